import BerthKit

/// The D-Bus face of the plugin: `org.berth.Berth1.Instances` at `/org/berth/Berth1/instances` and one
/// `org.berth.Berth1.Instance` per instance at `/org/berth/Berth1/instances/<escaped id>`. The logic lives in
/// `InstanceManager`; slow operations reply at once with a job `(u id, o path)`.
struct InstancesInterface: Sendable {
    static let name = "org.berth.Berth1.Instances"
    static let instanceName = "org.berth.Berth1.Instance"
    let manager: InstanceManager
    let context: PluginContext

    private static let jobOut = [BusArg("job_id", "u"), BusArg("job", "o")]

    var root: BusInterface {
        BusInterface(
            Self.name,
            methods: [
                .async("New", in: [BusArg("config_json", "s")], out: [BusArg("id", "s"), BusArg("instance", "o")]) {
                    call in
                    let instance = try await manager.create(json: call.string(0))
                    return [.string(instance.id), .objectPath(context.childPath(instance.id))]
                },
                .async("List", out: [BusArg("instances", "a(ssso)")]) { _ in
                    let rows = await manager.list().map { instance -> [DBusValue] in
                        [
                            .string(instance.id), .string(instance.application), .string(instance.stateName),
                            .objectPath(context.childPath(instance.id)),
                        ]
                    }
                    return [.structs("(ssso)", rows)]
                },
                .async("Start", in: [BusArg("id", "s")], out: Self.jobOut) { call in try await start(call.string(0)) },
                .async("Stop", in: [BusArg("id", "s")], out: Self.jobOut) { call in try await stop(call.string(0)) },
                .async("Destroy", in: [BusArg("id", "s")], out: Self.jobOut) { call in try await destroy(call.string(0))
                },
                .async(
                    "Deploy", in: [BusArg("application", "s"), BusArg("source", "s"), BusArg("options", "a{sv}")],
                    out: Self.jobOut
                ) { call in
                    try await deploy(application: call.string(0), source: call.string(1), options: call.options(2))
                        .reply
                },
                .async("Rollback", in: [BusArg("application", "s")], out: Self.jobOut) { call in
                    try await rollback(call.string(0))
                },
                .async("ReopenLogs") { _ in
                    await manager.reopenLogs()
                    return []
                },
            ])
    }

    func instanceInterface(_ instance: Instance) -> BusInterface {
        let id = instance.id
        let record = instance.record
        return BusInterface(
            Self.instanceName,
            methods: [
                .async("Start", out: Self.jobOut) { _ in try await start(id) },
                .async("Stop", out: Self.jobOut) { _ in try await stop(id) },
                .async("Destroy", out: Self.jobOut) { _ in try await destroy(id) },
                .async("Logs", in: [BusArg("lines", "u")], out: [BusArg("lines", "as")]) { call in
                    // Reading the file is I/O: off the bus thread and off the cooperative pool.
                    let count = Int(min(call.uint32(0), 100_000))
                    let process = instance.process
                    return [.strings(try await OSThread.run(name: "berth-inst-logs") { process.tail(lines: count) })]
                },
            ],
            properties: [
                BusProperty("Id", "s", initial: .string(id), change: .const),
                BusProperty("Application", "s", initial: .string(record.application), change: .const),
                BusProperty("State", "s", initial: .string(instance.stateName)),
                BusProperty("MainPID", "u", initial: .uint32(0)),
                BusProperty("Folder", "s", initial: .string(instance.folder), change: .const),
                BusProperty("LogPath", "s", initial: .string(instance.store.logPath(id)), change: .const),
                BusProperty("Port", "q", initial: .uint16(UInt16(record.port)), change: .const),
                BusProperty("Active", "b", initial: .bool(false)),
                BusProperty("CreatedUSec", "t", initial: .uint64(record.createdUSec), change: .const),
                BusProperty("Config", "s", initial: .string(record.config.json.text), change: .const),
                BusProperty("LastError", "s", initial: .string("")),
            ])
    }

    func start(_ id: String) async throws -> [DBusValue] {
        let instance = try await manager.instance(id)
        try instance.checkServer()
        return try await context.startJob("start") { job in
            job.log("starting instance \(id)")
            try await manager.start(id)
            job.log("instance \(id) is running (pid \(instance.process.snapshot.mainPID))")
        }.reply
    }

    func stop(_ id: String) async throws -> [DBusValue] {
        _ = try await manager.instance(id)
        return try await context.startJob("stop") { job in
            try await manager.stop(id)
            job.log("instance \(id) stopped")
        }.reply
    }

    func destroy(_ id: String) async throws -> [DBusValue] {
        _ = try await manager.instance(id)
        return try await context.startJob("destroy") { job in
            try await manager.destroy(id)
            job.log("instance \(id) destroyed")
        }.reply
    }

    func deploy(application: String, source: String, options: [String: DBusValue]) async throws -> Job {
        let request = try DeployRequest.parse(application: application, source: source, options: options)
        try await manager.reserve(application)
        do {
            return try await context.startJob("deploy") { job in
                do {
                    try await manager.deploy(request, job: job)
                } catch {
                    await manager.release(application)
                    throw error
                }
                await manager.release(application)
            }
        } catch {
            await manager.release(application)
            throw error
        }
    }

    func rollback(_ application: String) async throws -> [DBusValue] {
        try InstanceNames.checkApplication(application, what: "application")
        _ = try await manager.rollbackTarget(application)
        try await manager.reserve(application)
        do {
            return try await context.startJob("rollback") { job in
                do {
                    try await manager.rollback(application, job: job)
                } catch {
                    await manager.release(application)
                    throw error
                }
                await manager.release(application)
            }.reply
        } catch {
            await manager.release(application)
            throw error
        }
    }
}
