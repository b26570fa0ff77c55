import BerthKit

/// The D-Bus face of the plugin (docs/api): `org.berth.Berth1.Services` at the plugin's root and one
/// `org.berth.Berth1.Service` per service. Handlers check their arguments and call `ServiceRegistry`/`ServiceUnit`.
enum ServicesInterface {
    static let servicesName = "org.berth.Berth1.Services"
    static let serviceName = "org.berth.Berth1.Service"
    static let jobReply = [BusArg("job_id", "u"), BusArg("job", "o")]

    static func services(_ registry: ServiceRegistry) -> BusInterface {
        BusInterface(
            servicesName,
            methods: [
                .sync("List", out: [BusArg("services", "a(ssso)")]) { [weak registry] _ in
                    let rows = (registry?.sortedUnits ?? []).map { unit in
                        DBusValue.structure([
                            .string(unit.name), .string(unit.process.snapshot.state.rawValue), .string(unit.endpoint),
                            .objectPath(unit.object.path),
                        ])
                    }
                    return [.array(element: "(ssso)", rows)]
                },
                .sync("Lookup", in: [BusArg("name", "s")], out: [BusArg("service", "o"), BusArg("endpoint", "s")]) {
                    [weak registry] call in
                    let unit = try unit(registry, call.string(0))
                    return [.objectPath(unit.object.path), .string(unit.endpoint)]
                },
                .async("Start", in: [BusArg("name", "s")], out: jobReply) { [weak registry] call in
                    try await operation(.start, try unit(registry, call.string(0)), registry, call.sender)
                },
                .async("Stop", in: [BusArg("name", "s")], out: jobReply) { [weak registry] call in
                    try await operation(.stop, try unit(registry, call.string(0)), registry, call.sender)
                },
                .async("Restart", in: [BusArg("name", "s")], out: jobReply) { [weak registry] call in
                    try await operation(.restart, try unit(registry, call.string(0)), registry, call.sender)
                },
                .async("Define", in: [BusArg("name", "s"), BusArg("spec_yaml", "s")]) { [weak registry] call in
                    guard let registry else { throw stopped }
                    let name = call.string(0)
                    if let unit = try? registry.unit(name) { try unit.checkOwner(call.sender, "redefine") }
                    try await registry.define(
                        name: name, yaml: call.string(1), source: "Define(\"\(name)\") by \(call.sender)")
                    return []
                },
                .async("Remove", in: [BusArg("name", "s")]) { [weak registry] call in
                    guard let registry else { throw stopped }
                    try await registry.remove(name: call.string(0), sender: call.sender)
                    return []
                },
            ],
            properties: [BusProperty("Autolaunch", "as", initial: .array(element: "s", []))])
    }

    static func service(_ registry: ServiceRegistry, name: String) -> BusInterface {
        BusInterface(
            serviceName,
            methods: [
                .async("Start", out: jobReply) { [weak registry] call in
                    try await operation(.start, try unit(registry, name), registry, call.sender)
                },
                .async("Stop", out: jobReply) { [weak registry] call in
                    try await operation(.stop, try unit(registry, name), registry, call.sender)
                },
                .async("Restart", out: jobReply) { [weak registry] call in
                    try await operation(.restart, try unit(registry, name), registry, call.sender)
                },
                .async("Lock") { [weak registry] call in
                    guard let registry else { throw stopped }
                    try await unit(registry, name).lock(sender: call.sender, connection: registry.context.connection)
                    return []
                },
                .sync("Unlock") { [weak registry] call in
                    try unit(registry, name).unlock(sender: call.sender)
                    return []
                },
                .async("Logs", in: [BusArg("lines", "u")], out: [BusArg("lines", "as")]) { [weak registry] call in
                    let count = call.uint32(0)
                    guard count >= 1, count <= 100_000 else {
                        throw BerthError.invalidArgument(
                            "service \"\(name)\" cannot show \(count) log lines: give 1 to 100000")
                    }
                    // Reading the file is I/O: off the bus thread and off the cooperative pool.
                    let process = try unit(registry, name).process
                    let lines = try await OSThread.run(name: "berth-svc-logs") { process.tail(lines: Int(count)) }
                    return [.array(element: "s", lines.map(DBusValue.string))]
                },
            ],
            properties: [
                BusProperty("Name", "s", initial: .string(name), change: .const),
                BusProperty("Description", "s", initial: .string("")),
                BusProperty("State", "s", initial: .string("inactive")),
                BusProperty("SubState", "s", initial: .string("dead")),
                BusProperty("MainPID", "u", initial: .uint32(0)),
                BusProperty("Endpoint", "s", initial: .string("")),
                BusProperty("Restarts", "u", initial: .uint32(0)),
                BusProperty("ExitStatus", "i", initial: .int32(0)),
                BusProperty("ActiveSinceUSec", "t", initial: .uint64(0)),
                BusProperty("LockedBy", "s", initial: .string("")),
                BusProperty("StatusText", "s", initial: .string("")),
                BusProperty("Result", "s", initial: .string("success")),
                BusProperty("LastError", "s", initial: .string("")),
                BusProperty("After", "as", initial: .array(element: "s", [])),
                BusProperty("Requires", "as", initial: .array(element: "s", [])),
                BusProperty("WaitingFor", "as", initial: .array(element: "s", [])),
                BusProperty("Processes", "a(us)", initial: .array(element: "(us)", [])),
            ])
    }

    enum Operation: String { case start, stop, restart }

    static let stopped = BerthError.failed("the services plugin is stopping")

    static func unit(_ registry: ServiceRegistry?, _ name: String) throws -> ServiceUnit {
        guard let registry else { throw stopped }
        return try registry.unit(name)
    }

    /// Starts the job of a Start/Stop/Restart: it ends `done` when the service is ready (or stopped), `failed` with
    /// the reason otherwise. A client that does not own the lock gets `Busy`.
    static func operation(_ op: Operation, _ unit: ServiceUnit, _ registry: ServiceRegistry?, _ sender: String)
        async throws
        -> [DBusValue]
    {
        guard let registry else { throw stopped }
        try unit.checkOwner(sender, op.rawValue)
        let job = try await registry.context.startJob(op.rawValue + " " + unit.name) { job in
            defer { unit.publish() }
            do {
                // Ordered (after/requires) and recorded as the desired state for the next daemon start.
                switch op {
                case .start:
                    // The record is written (fsync) while the service starts, not before.
                    async let recorded: Void = registry.setWanted(unit.name, true)
                    do { try await registry.start(unit.name) } catch {
                        await recorded
                        throw error
                    }
                    await recorded
                case .stop: await registry.stop(unit.name)
                case .restart: try await registry.restart(unit.name)
                }
            } catch let error as BerthError where error.code == .timeout {
                // Not ready within start_timeout: the service was stopped and the job ends `failed` with the reason.
                throw BerthError.failed(error.message)
            }
        }
        return job.reply
    }
}
