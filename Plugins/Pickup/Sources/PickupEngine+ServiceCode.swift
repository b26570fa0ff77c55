import BerthKit

// Pickup's `service:NAME` target: code hot-deployed into a running service (Zato: "any Python module placed in
// the directory is picked up and deployed"). Files in `pickup/services/NAME/` (the built-in services folder's
// subfolders) or in a folder configured with `target: service:NAME` become a new release of that service's code
// through the services plugin (`ServiceCodeDeploying`), which restarts (or signals) the service and must see it
// ready, else brings the previous release back and fails the deployment with the reason.

extension PickupDirectory {
    /// The target of a file in a subfolder of a `services` folder: `service:NAME` for `NAME/file` (every file
    /// but the ignored ones is code), `service:NAME/SUB` for deeper files (refused with the reason when deployed).
    /// Nil for the folder's own files (service definitions) and for other targets.
    func serviceCodeTarget(forRelative relative: String) -> String? {
        guard target == "services" else { return nil }
        let parts = relative.split(separator: "/").map(String.init)
        guard parts.count >= 2, let file = parts.last, !NameRules.isIgnored(file, extra: ignore),
            !parts.dropLast().contains(where: { $0.hasPrefix(".") })
        else { return nil }
        return "service:" + parts.dropLast().joined(separator: "/")
    }
}

extension NameRules {
    /// `service:NAME` with a plain NAME.
    static func isServiceCodeTarget(_ target: String) -> Bool {
        target.hasPrefix("service:") && isPlainIdentifier(String(target.dropFirst("service:".count)))
    }
}

extension PickupEngine {
    /// The `service:NAME` target of a change (a plain NAME), nil for every other change: those of one batch deploy
    /// together (`deployServiceCodeBatch`).
    func serviceCodeTarget(of change: PickupChange) -> String? {
        guard case .deploy(let target)? = directories[change.directory]?.placement(forRelative: change.relative),
            NameRules.isServiceCodeTarget(target)
        else { return nil }
        return target
    }

    /// One pickup batch's code files for one service (`cp a.py b.py c.py`, an rsync, a git checkout): ONE release
    /// holding the previous release's files plus each of them, ONE restart (or reload signal) and readiness check.
    /// Each file is still its own deployment, logged (and marked) with the shared outcome: all deployed, or all
    /// failed with the reason and the previous release back. Each file is checked on its own first (unchanged,
    /// unreadable, removed: as for any target), holding every file's artifact as a lone deployment would.
    func deployServiceCodeBatch(target: String, _ changes: [PickupChange]) async {
        let names = Set(changes.map { FileSystem.baseName($0.relative) }).sorted()
        await exclusive(names: names[...], target: target) {
            var files: [PreparedFile] = []
            for change in changes {
                guard let directory = directories[change.directory] else { continue }
                let name = FileSystem.baseName(change.relative)
                if let file = await prepare(change, directory: directory, name: name, target: target) {
                    files.append(file)
                }
            }
            guard !files.isEmpty else { return }
            var records = files.map { file in
                DeploymentRecord(
                    name: file.name, target: target, source: file.source, sha256: file.sha256,
                    size: Int64(file.bytes.count), timeUSec: SystemClock.wallUSec(), status: .deployed, error: "")
            }
            do {
                let stored = try files.map { file in
                    (name: file.name, contentPath: try store.store(file.bytes, sha256: file.sha256, name: file.name))
                }
                try await deployServiceCode(
                    target: target, files: stored, source: files.map(\.source).joined(separator: ", "))
            } catch {
                for index in records.indices {
                    records[index].status = .failed
                    records[index].error = Self.describe(error)
                    records[index].code = Self.code(of: error)
                }
            }
            for (file, record) in zip(files, records) { noteDeployed(file, finish(record)) }
        }
    }

    /// `exclusive` for several artifacts of one target at once, taken in name order (no two callers wait on each
    /// other: every other caller holds one artifact).
    private func exclusive(names: ArraySlice<String>, target: String, _ body: () async -> Void) async {
        guard let name = names.first else { return await body() }
        await exclusive(name: name, target: target) {
            await exclusive(names: names.dropFirst(), target: target, body)
        }
    }

    /// Hands code files to the services plugin as one new release of service NAME (`target` is `service:NAME`).
    func deployServiceCode(target: String, files: [(name: String, contentPath: String)], source: String)
        async throws
    {
        let service = String(target.dropFirst("service:".count))
        guard NameRules.isPlainIdentifier(service) else {
            let top = service.split(separator: "/").first.map(String.init) ?? service
            let names = files.map { BerthError.quote($0.name) }.joined(separator: ", ")
            throw BerthError.invalidArgument(
                "pickup does not deploy \(names) from \"services/\(service)/\": a service's code folder takes files, not subfolders; put it in \"services/\(top)/\""
            )
        }
        guard let services = targets.peer("services") as? any ServiceCodeDeploying else {
            let names = files.map { BerthError.quote($0.name) }.joined(separator: ", ")
            throw BerthError.notSupported(
                "pickup cannot deploy \(names) into service \"\(service)\": the services plugin is not active")
        }
        _ = try await services.deployServiceCode(service: service, files: files, source: source)
    }
}
