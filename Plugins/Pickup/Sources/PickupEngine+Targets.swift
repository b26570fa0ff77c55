import BerthKit
import Glibc

extension PickupEngine {
    /// Hands one stored artifact to its target. Throws the reason it failed.
    func perform(target: String, name: String, bytes: [UInt8], storedPath: String, source: String) async throws {
        switch target {
        case "services":
            guard let services = targets.peer("services") as? any ServiceDefining else {
                throw BerthError.notSupported(
                    "pickup cannot deploy service definition \"\(name)\": the services plugin is not active")
            }
            try await services.defineService(
                name: Self.stem(name), specYAML: String(decoding: bytes, as: UTF8.self), source: source)
        case "config":
            do {
                try await targets.importConfig(storedPath)
            } catch let error as BerthError {
                // The importer names the file it read, the stored copy: say the file the user gave instead.
                let given = source.hasPrefix("/") ? source : "\(source) \(BerthError.quote(name))"
                throw BerthError(error.code, error.message.replacing(storedPath, with: given))
            }
        case "files":
            try publishFile(name: name, storedPath: storedPath)
        default:
            if target.hasPrefix("service:") {
                return try await deployServiceCode(
                    target: target, files: [(name: name, contentPath: storedPath)], source: source)
            }
            guard target.hasPrefix("instances/") else {
                throw BerthError.invalidArgument("pickup target \"\(target)\" is not known")
            }
            let application = String(target.dropFirst("instances/".count))
            guard let instances = targets.peer("instances") as? any InstanceDeploying else {
                throw BerthError.notSupported(
                    "pickup cannot deploy bundle \"\(name)\" of application \"\(application)\": the instances plugin is not active"
                )
            }
            let job = try await instances.deployBundle(application: application, source: storedPath, options: [:])
            switch await job.wait() {
            case .done: return
            case .failed(let error): throw error
            case .canceled:
                throw BerthError(.cancelled, "the rolling deploy of \"\(application)\" from \"\(name)\" was canceled")
            case .timeout(let why):
                throw BerthError.failed("the rolling deploy of \"\(application)\" timed out: \(why)")
            }
        }
    }

    /// `Undeploy`: undoes a deployment on request.
    @discardableResult
    func undeployRequested(name: String, target: String) async throws -> DeploymentRecord {
        try await exclusive(name: name, target: target) {
            try await undeploy(name: name, target: target, source: "request")
        }
    }

    /// Undoes a deployment (services: removes the service; files: withdraws the file) and logs it.
    @discardableResult
    func undeploy(name: String, target: String, source: String) async throws -> DeploymentRecord {
        guard let current = try log.current(name: name, target: target), current.status == .deployed else {
            throw BerthError.notFound("pickup has no deployed \"\(name)\" in target \"\(target)\"")
        }
        switch target {
        case "services":
            guard let services = targets.peer("services") as? any ServiceDefining else {
                throw BerthError.notSupported(
                    "pickup cannot undeploy service \"\(name)\": the services plugin is not active")
            }
            try await services.removeService(name: Self.stem(name))
        case "files":
            unlink(publishedPath(name))
        default:
            throw BerthError.notSupported(
                "pickup cannot undeploy \"\(name)\" from target \"\(target)\": only services and files can be undeployed"
            )
        }
        var record = current
        record.source = source
        record.status = .undeployed
        record.timeUSec = SystemClock.wallUSec()
        record.error = ""
        return try log.append(record)
    }

    /// Deploys the newest earlier version of an artifact again, from its stored copy.
    func rollback(name: String, target: String) async throws -> DeploymentRecord {
        try await exclusive(name: name, target: target) { try await rollbackAlone(name: name, target: target) }
    }

    private func rollbackAlone(name: String, target: String) async throws -> DeploymentRecord {
        guard let current = try log.current(name: name, target: target) else {
            throw BerthError.notFound("pickup has never deployed \"\(name)\" in target \"\(target)\"")
        }
        for sha in try log.versions(name: name, target: target)
        where sha != current.sha256 || current.status != .deployed {
            guard let bytes = try store.contents(sha256: sha, name: name, limit: maxArtifactBytes) else { continue }
            return await deploy(name: name, bytes: bytes, sha256: sha, target: target, source: "rollback")
        }
        throw BerthError.notFound(
            "pickup keeps no earlier version of \"\(name)\" in target \"\(target)\" to roll back to")
    }

    /// `files`: the current version of each file is a symlink `<state>/published/<name>` to its stored copy.
    func publishedPath(_ name: String) -> String { stateDirectory + "/published/" + name }

    private func publishFile(name: String, storedPath: String) throws {
        let folder = stateDirectory + "/published"
        try FileSystem.makeDirectories(folder)
        let temp = folder + "/.link.tmp"  // not named after the file: see ArtifactStore.store
        unlink(temp)
        guard symlink(storedPath, temp) == 0 else { throw SystemError("cannot link \"\(temp)\"", errno: errno) }
        guard rename(temp, publishedPath(name)) == 0 else {
            let code = errno
            unlink(temp)
            throw SystemError("cannot publish \"\(name)\"", errno: code)
        }
    }

    /// `web.yaml` → `web` (the service name a definition file stands for).
    static func stem(_ name: String) -> String {
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return name }
        return String(name[..<dot])
    }
}

/// WildFly-style markers beside a source: `NAME.deployed` (id and sha256) or `NAME.failed` (the reason).
enum Markers {
    static func write(beside path: String, _ record: DeploymentRecord) {
        let ok = record.status == .deployed
        unlink(path + (ok ? ".failed" : ".deployed"))
        let text = ok ? "\(record.id) \(record.sha256)\n" : record.error + "\n"
        try? FileSystem.writeAtomically(path + (ok ? ".deployed" : ".failed"), text: text)
    }

    static func clear(_ path: String) {
        unlink(path + ".deployed")
        unlink(path + ".failed")
    }
}
