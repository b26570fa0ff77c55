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
                .async("ForceDestroy", in: [BusArg("id", "s")], out: Self.jobOut) { call in
                    try await destroy(call.string(0), force: true)
                },
                .async("Switch", in: [BusArg("id", "s")], out: Self.jobOut) { call in
                    try await switchTo(call.string(0))
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

    /// A job's operation (its `Operation` and `JobNew`'s subject): the verb, the instance and its application,
    /// e.g. `start web-jCCbfV (web)`; an instance of no application is named alone.
    static func operation(_ verb: String, _ id: String, application: String) -> String {
        application.isEmpty ? "\(verb) \(id)" : "\(verb) \(id) (\(application))"
    }

    func start(_ id: String) async throws -> [DBusValue] {
        let instance = try await manager.instance(id)
        try instance.checkServer()
        return try await context.startJob(Self.operation("start", id, application: instance.application)) { job in
            job.log("starting instance \(id)")
            try await manager.start(id)
            job.log("instance \(id) is running (pid \(instance.process.snapshot.mainPID))")
        }.reply
    }

    func stop(_ id: String) async throws -> [DBusValue] {
        let instance = try await manager.instance(id)
        return try await context.startJob(Self.operation("stop", id, application: instance.application)) { job in
            try await manager.stop(id)
            job.log("instance \(id) stopped")
        }.reply
    }

    /// Destroy refuses the instance that serves its application (`Busy`); `force` (ForceDestroy) switches the
    /// front end away first, or says that nothing serves.
    func destroy(_ id: String, force: Bool = false) async throws -> [DBusValue] {
        let instance = try await manager.checkDestroy(id, force: force)
        let verb = force ? "force-destroy" : "destroy"
        return try await context.startJob(Self.operation(verb, id, application: instance.application)) { job in
            try await manager.destroy(id, force: force, log: { job.log($0) })
            job.log("instance \(id) destroyed")
        }.reply
    }

    /// Switch: the front end of the instance's application to this instance, once its health check passes.
    func switchTo(_ id: String) async throws -> [DBusValue] {
        let instance = try await manager.switchTarget(id)
        let application = instance.application
        return try await applicationJob(application, operation: { _ in "switch \(application) to \(id)" }) { job, _ in
            try await manager.switchTo(id, job: job)
        }.reply
    }

    func deploy(application: String, source: String, options: [String: DBusValue]) async throws -> Job {
        let request = try DeployRequest.parse(application: application, source: source, options: options)
        return try await applicationJob(
            application, preparing: { try await manager.reserveInstance(application: application) },
            undo: { await manager.releaseReserved($0) }, operation: { "deploy \(application) as \($0)" }
        ) { job, id in
            try await manager.deploy(request, id: id, job: job)
        }
    }

    func rollback(_ application: String) async throws -> [DBusValue] {
        try InstanceNames.checkApplication(application, what: "application")
        let target = try await manager.rollbackTarget(application)
        return try await applicationJob(application, operation: { _ in "rollback \(application) to \(target.id)" }) {
            job, _ in try await manager.rollback(application, job: job)
        }.reply
    }

    /// A job that changes what serves `application` (deploy, rollback, switch). It holds the application's
    /// reservation (one such job at a time) from before it starts until it ends, or gives it back at once when the
    /// job cannot start. `preparing` makes a value once the application is reserved (deploy's reserved instance id;
    /// `operation` names the job with it) and `undo` gives that value back when the job fails or cannot start.
    private func applicationJob(
        _ application: String, preparing: () async throws -> String = { "" },
        undo: @escaping @Sendable (String) async -> Void = { _ in }, operation: (String) -> String,
        _ body: @escaping @Sendable (Job, String) async throws -> Void
    ) async throws -> Job {
        try await manager.reserve(application)
        var prepared: String?
        do {
            let value = try await preparing()
            prepared = value
            return try await context.startJob(operation(value)) { job in
                do {
                    try await body(job, value)
                } catch {
                    await undo(value)
                    await manager.release(application)
                    throw error
                }
                await manager.release(application)
            }
        } catch {
            if let prepared { await undo(prepared) }
            await manager.release(application)
            throw error
        }
    }
}
