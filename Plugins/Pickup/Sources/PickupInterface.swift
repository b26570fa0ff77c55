import BerthKit
import Glibc

/// `org.berth.Berth1.Pickup` at `/org/berth/Berth1/pickup` (docs/api). Each method checks its
/// arguments here and calls `PickupService` / `PickupEngine`, which hold the logic.
enum PickupInterface {
    static let name = "org.berth.Berth1.Pickup"

    static func make(_ service: PickupService, logger: Logger) -> BusInterface {
        let engine = service.engine
        return BusInterface(
            name,
            methods: [
                .async(
                    "AddDirectory",
                    in: [BusArg("name", "s"), BusArg("path", "s"), BusArg("target", "s"), BusArg("options", "a{sv}")]
                ) {
                    call in
                    let directory = try checkNewDirectory(call, service)
                    try await service.addRuntime(directory)
                    logger.info("pickup folder \"\(directory.name)\" added: \(directory.path) → \(directory.target)")
                    return []
                },
                .async("RemoveDirectory", in: [BusArg("name", "s")]) { call in
                    let name = call.string(0)
                    guard let directory = service.watcher.directories.first(where: { $0.name == name }) else {
                        throw BerthError.notFound("pickup has no folder named \"\(name)\"")
                    }
                    guard directory.origin == .runtime else {
                        throw BerthError.invalidArgument(
                            "pickup folder \"\(name)\" comes from \(directory.origin == .config ? "the config file" : "pickup itself"); "
                                + "only folders added with AddDirectory can be removed")
                    }
                    try await engine.deleteSavedDirectory(name)
                    await service.remove(name)
                    return []
                },
                .async(
                    "Deploy", in: [BusArg("filename", "s"), BusArg("data", "ay"), BusArg("target", "s")],
                    out: [BusArg("deployment_id", "s")]
                ) {
                    call in
                    let filename = call.string(0)
                    try NameRules.checkPlainName(filename)
                    let target = call.string(2)
                    try NameRules.checkTarget(target)
                    let bytes = call.bytes(1)
                    try engine.checkUpload(name: filename, size: bytes.count)
                    return try reply(await engine.upload(name: filename, bytes: bytes, target: target))
                },
                .async(
                    "DeployFd", in: [BusArg("fd", "h"), BusArg("name", "s"), BusArg("target", "s")],
                    out: [BusArg("deployment_id", "s")]
                ) {
                    call in
                    // The descriptor is ours (a duplicate the bus made for this call): closed exactly once, here
                    // when an argument is refused, else by the engine once it has read it.
                    guard case .unixFD(let fd) = call.arguments[0] else {
                        throw BerthError.invalidArgument("pickup DeployFd: the first argument must be a descriptor")
                    }
                    let name = call.string(1)
                    let target = call.string(2)
                    do {
                        try NameRules.checkPlainName(name)
                        try NameRules.checkTarget(target)
                    } catch {
                        close(fd)
                        throw error
                    }
                    return try reply(try await engine.deployDescriptor(fd, name: name, target: target))
                },
                .async(
                    "DeployFile", in: [BusArg("path", "s"), BusArg("target", "s")], out: [BusArg("deployment_id", "s")]
                ) {
                    call in
                    let (path, target) = try checkDeployFile(call.string(0), call.string(1), service)
                    return try reply(try await engine.deployFile(path: path, target: target))
                },
                .async("ListDeployments", in: [BusArg("limit", "u")], out: [BusArg("deployments", "a(sssssts)")]) {
                    call in
                    let limit = call.uint32(0) == 0 ? 100 : Int(min(call.uint32(0), 100_000))
                    let rows = try await engine.listDeployments(limit: limit).map { r -> [DBusValue] in
                        [
                            .string(String(r.id)), .string(r.name), .string(r.target), .string(r.status.rawValue),
                            .string(r.sha256), .uint64(r.timeUSec), .string(r.error),
                        ]
                    }
                    return [.structs("(sssssts)", rows)]
                },
                .async("Undeploy", in: [BusArg("name", "s"), BusArg("target", "s")]) { call in
                    try NameRules.checkTarget(call.string(1))
                    try await engine.undeployRequested(name: call.string(0), target: call.string(1))
                    return []
                },
                .async(
                    "Rollback", in: [BusArg("name", "s"), BusArg("target", "s")], out: [BusArg("deployment_id", "s")]
                ) {
                    call in
                    try NameRules.checkTarget(call.string(1))
                    return try reply(try await engine.rollback(name: call.string(0), target: call.string(1)))
                },
            ],
            properties: [
                BusProperty("Directories", "a(sss)", initial: .structs("(sss)", [])),
                BusProperty("Paused", "b", initial: .bool(false)) { value, _ in
                    guard let paused = value.bool else {
                        throw BerthError.invalidArgument("pickup Paused must be a boolean, got \(value)")
                    }
                    engine.pausedFlag.withLock { $0 = paused }
                    if !paused { Task { await engine.drainQueue() } }
                },
            ],
            signals: [
                BusSignal(
                    "Deployed",
                    [
                        BusArg("id", "s"), BusArg("name", "s"), BusArg("target", "s"), BusArg("sha256", "s"),
                        BusArg("commit", "s"),
                    ]),
                BusSignal(
                    "DeployFailed",
                    [BusArg("id", "s"), BusArg("name", "s"), BusArg("target", "s"), BusArg("error", "s")]),
            ])
    }

    /// The reply of a method that deployed: the deployment's id, or, when it failed, an error with the reason
    /// (`StorageFull`, `InvalidConfig`, `NotSupported`, ...) that names the deployment; `DeployFailed` was sent
    /// all the same. A deployment the log could not take (a full disk) has no id to give.
    static func reply(_ record: DeploymentRecord) throws -> [DBusValue] {
        guard record.status == .failed else { return [.string(String(record.id))] }
        let which = record.id > 0 ? "deployment \(record.id)" : "the deployment (not logged)"
        throw BerthError(
            record.code ?? .failed,
            "pickup \(which) of \(BerthError.quote(record.name)) to \(record.target) failed: \(record.error)")
    }

    /// AddDirectory's checks: a new plain name, an absolute existing folder, a known target, known options.
    static func checkNewDirectory(_ call: BusCall, _ service: PickupService) throws -> PickupDirectory {
        let name = call.string(0)
        var path = call.string(1)
        let target = call.string(2)
        guard NameRules.isPlainIdentifier(name) else {
            throw BerthError.invalidArgument(
                "pickup folder name \"\(name.replacingNUL)\" must be 1 to 64 letters, digits, - _ or . (not leading)")
        }
        if service.watcher.directories.contains(where: { $0.name == name }) {
            throw PickupService.nameTaken(name)
        }
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        guard path.hasPrefix("/"), !path.utf8.contains(0) else {
            throw BerthError.invalidArgument(
                "pickup folder \"\(name)\": path \"\(path.replacingNUL)\" must be absolute")
        }
        guard FileSystem.isDirectory(path) else {
            throw BerthError.notFound("pickup folder \"\(name)\": \"\(path)\" is not an existing folder")
        }
        try NameRules.checkTarget(target, allowBareInstances: true)
        return try PickupDirectory.fromOptions(name: name, path: path, target: target, options: call.options(3))
    }

    /// DeployFile's checks: an absolute path to an existing file; an empty target means the target of the
    /// pickup folder holding the file, else `files`.
    static func checkDeployFile(_ path: String, _ target: String, _ service: PickupService) throws -> (String, String) {
        guard path.hasPrefix("/"), !path.utf8.contains(0) else {
            throw BerthError.invalidArgument("pickup DeployFile: path \"\(path.replacingNUL)\" must be absolute")
        }
        guard FileSystem.exists(path), !FileSystem.isDirectory(path) else {
            throw BerthError.notFound("pickup DeployFile: \"\(path)\" is not an existing file")
        }
        if !target.isEmpty {
            try NameRules.checkTarget(target)
            return (path, target)
        }
        for directory in service.watcher.directories where path.hasPrefix(directory.path + "/") {
            if let found = directory.target(forRelative: String(path.dropFirst(directory.path.count + 1))) {
                return (path, found)
            }
        }
        return (path, "files")
    }
}
