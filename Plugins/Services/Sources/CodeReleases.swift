import BerthKit
import Glibc

/// A service's deployed code: `<state dir>/services/code/NAME/releases/<id>/` (one folder per release, the files
/// side by side) and `current`, a symlink to `releases/<id>` switched atomically (a new link renamed over it). A
/// service without a `workdir` whose `current` exists runs in it (`<code>/current`, resolved at each spawn, so a
/// restart runs the new release). Blocking file work: call it on a worker thread.
struct CodeReleases: Sendable {
    let root: String

    /// Releases kept besides the current one (for a rollback by hand).
    static let kept = 5

    var releasesFolder: String { root + "/releases" }
    var currentLink: String { root + "/current" }

    /// The id of the current release, nil before the first deployment.
    func current() -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink(currentLink, &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        let target = String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return FileSystem.baseName(target)
    }

    /// A new release: the files of the current one (hard links: unchanged files cost nothing) plus each of `files`
    /// (a name and the path of its bytes; a script starting `#!` is made executable; a name given twice: the last
    /// wins). Built under a dot name and renamed into place, so a release folder is always complete. Returns its id.
    func make(adding files: [(name: String, contentPath: String)]) throws -> String {
        try FileSystem.makeDirectories(releasesFolder, mode: 0o755)
        var stamp = SystemClock.wallUSec()
        var id = Self.id(stamp)
        while FileSystem.exists(releasesFolder + "/" + id) {
            stamp += 1
            id = Self.id(stamp)
        }
        let temp = releasesFolder + "/." + id + ".tmp"
        try? FileSystem.removeTree(temp)
        try FileSystem.makeDirectories(temp, mode: 0o755)
        do {
            let added = Set(files.map(\.name))
            if let previous = current() {
                let from = releasesFolder + "/" + previous
                for file in FileSystem.list(from) where !added.contains(file) {
                    if link(from + "/" + file, temp + "/" + file) != 0 {
                        guard let bytes = try FileSystem.read(from + "/" + file, limit: 1 << 30) else { continue }
                        try FileSystem.writeAtomically(temp + "/" + file, bytes, mode: Self.mode(bytes))
                    }
                }
            }
            for (fileName, contentPath) in files {
                guard let bytes = try FileSystem.read(contentPath, limit: 1 << 30) else {
                    throw BerthError.notFound("the deployed copy \"\(contentPath)\" of \"\(fileName)\" is gone")
                }
                try FileSystem.writeAtomically(temp + "/" + fileName, bytes, mode: Self.mode(bytes))
            }
            guard rename(temp, releasesFolder + "/" + id) == 0 else {
                throw SystemError("cannot rename \"\(temp)\" to release \(id)", errno: errno)
            }
            FileSystem.syncDirectory(releasesFolder)
        } catch {
            try? FileSystem.removeTree(temp)
            throw error
        }
        return id
    }

    /// Points `current` at release `id` (nil: removes the link) atomically.
    func switchTo(_ id: String?) throws {
        guard let id else {
            unlink(currentLink)
            FileSystem.syncDirectory(root)
            return
        }
        let temp = root + "/.current.tmp"
        unlink(temp)
        guard symlink("releases/" + id, temp) == 0 else { throw SystemError("cannot link \"\(temp)\"", errno: errno) }
        guard rename(temp, currentLink) == 0 else {
            let code = errno
            unlink(temp)
            throw SystemError("cannot switch \"\(currentLink)\" to release \(id)", errno: code)
        }
        FileSystem.syncDirectory(root)
    }

    func remove(_ id: String) { try? FileSystem.removeTree(releasesFolder + "/" + id) }

    /// Removes all but the newest `kept` releases besides the current one.
    func prune() {
        let current = current()
        let all = FileSystem.list(releasesFolder).filter { !$0.hasPrefix(".") && $0 != current }.sorted()
        for id in all.dropLast(Self.kept) { remove(id) }
    }

    /// Ids sort by time: 16 digits of microseconds since the epoch.
    static func id(_ usec: UInt64) -> String {
        let digits = String(usec)
        return String(repeating: "0", count: max(0, 16 - digits.count)) + digits
    }

    static func mode(_ bytes: [UInt8]) -> mode_t { bytes.starts(with: [0x23, 0x21]) ? 0o755 : 0o644 }
}

extension ServiceRegistry {
    /// The code folder of service `name`.
    func codeReleases(_ name: String) -> CodeReleases {
        CodeReleases(root: FileSystem.directoryName(store.directory) + "/code/" + name)
    }

    /// pickup's `service:NAME` target: see `ServiceCodeDeploying`. All of `files` make one release and one
    /// restart (or reload signal). Deployments to one service go one at a time.
    func deployCode(service name: String, files: [(name: String, contentPath: String)]) async throws -> String {
        let unit = try unit(name)
        guard !files.isEmpty else {
            throw BerthError.invalidArgument("a new release of service \"\(name)\" needs at least one file")
        }
        let releases = codeReleases(name)
        let lock = codeLock(name)
        return try await lock.withLock {
            let (previous, id) = try await OSThread.run(name: "berth-svc-code") {
                let previous = releases.current()
                let id = try releases.make(adding: files)
                try releases.switchTo(id)
                return (previous, id)
            }
            let state = unit.process.snapshot.state
            guard state == .active || state == .activating else {
                // Its next start runs in `current` (a service defined before it had code gets a process that does).
                await self.runInCode(unit)
                // Not running: the new release is what its next start runs.
                try? await OSThread.run(name: "berth-svc-code") { releases.prune() }
                return id
            }
            do {
                try await activate(unit, signalAllowed: previous != nil)
            } catch {
                let reason = BerthError.wrapping(error).message
                try? await OSThread.run(name: "berth-svc-code") {
                    try releases.switchTo(previous)
                    releases.remove(id)
                }
                var back = previous.map { "release \($0) is back" } ?? "there is no earlier release"
                do { try await self.restart(name) } catch {
                    back += ", but the service did not start on it either (\(BerthError.wrapping(error).message))"
                }
                let names = files.map { BerthError.quote($0.name) }.joined(separator: ", ")
                throw BerthError.failed(
                    "service \"\(name)\" did not become ready on release \(id) with \(names) (\(reason)); \(back)")
            }
            try? await OSThread.run(name: "berth-svc-code") { releases.prune() }
            return id
        }
    }

    /// Puts a running service on the current release: its `reload_signal` when it has one and already runs in the
    /// `current` folder (then it must still be running, and answer on its TCP port when it has `ready: tcp:`, after
    /// `reloadGrace`), else a restart that must reach ready.
    private func activate(_ unit: ServiceUnit, signalAllowed: Bool) async throws {
        let definition = unit.definition
        let process = unit.process
        let codeFolder = codeReleases(unit.name).currentLink
        let runsInCode = process.spec.workingDirectory == codeFolder
        await runInCode(unit)
        if let signal = definition.reloadSignal, signalAllowed, runsInCode, process.snapshot.mainPID > 0 {
            let pid = process.snapshot.mainPID
            guard kill(pid, signal) == 0 else {
                throw BerthError.failed("cannot send signal \(signal) to pid \(pid): \(systemErrorText(errno))")
            }
            try await Task.sleep(for: Self.reloadGrace)
            let snapshot = process.snapshot
            guard snapshot.state == .active, snapshot.mainPID == pid else {
                throw BerthError.failed(
                    "it did not survive its reload signal (\(snapshot.state.rawValue)\(snapshot.lastError.isEmpty ? "" : ": " + snapshot.lastError))")
            }
            if case .tcp(let port) = definition.spec.readiness, !(await Self.answers(port: port)) {
                throw BerthError.failed("it does not answer on port \(port) after its reload signal")
            }
            return
        }
        try await restart(unit.name)
    }

    static let reloadGrace = Duration.milliseconds(100)

    /// A service without a `workdir` whose process was made before it had code gets a process that runs in
    /// `current` (the old one is stopped first, when it runs).
    private func runInCode(_ unit: ServiceUnit) async {
        let definition = unit.definition
        guard definition.spec.workingDirectory == nil,
            unit.process.spec.workingDirectory != codeReleases(unit.name).currentLink
        else { return }
        await unit.replace(definition: definition, process: makeProcess(definition))
    }

    private static func answers(port: UInt16) async -> Bool {
        (try? await OSThread.run(name: "berth-svc-probe") { () -> Bool in
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { return false }
            defer { close(fd) }
            return Loopback.connect(fd, port: port) == 0
        }) ?? false
    }
}
