import BerthKit
import Synchronization

/// `org.berth.Berth1.Uplink` at `/org/berth/Berth1/uplink` (docs/api). Each method checks its arguments
/// here and calls `UplinkService`, which holds the logic.
enum UplinkInterface {
    static let name = "org.berth.Berth1.Uplink"

    static func make(_ service: UplinkService, context: PluginContext) -> BusInterface {
        BusInterface(
            name,
            methods: [
                .async("Flush", out: [BusArg("job_id", "u"), BusArg("job", "o")]) { _ in
                    try await flush(service, context: context).reply
                },
                .async("Test", in: [BusArg("destination", "s")], out: [BusArg("job_id", "u"), BusArg("job", "o")]) {
                    call in
                    try await test(service, destination: call.string(0), context: context).reply
                },
                .async("ListPending", in: [BusArg("limit", "u")], out: [BusArg("messages", "a(ssstus)")]) { call in
                    let limit = call.uint32(0) == 0 ? 100 : Int(min(call.uint32(0), 100_000))
                    let outbox = service.outbox
                    let rows = try await OSThread.run(name: "uplink-list") { try outbox.list(limit: limit) }
                    return [
                        .structs(
                            "(ssstus)",
                            rows.map {
                                [
                                    .string($0.id), .string($0.destination), .string($0.event), .uint64($0.createdUSec),
                                    .uint32(UInt32(clamping: $0.attempts)), .string($0.lastError),
                                ]
                            })
                    ]
                },
            ],
            properties: [
                BusProperty("Destinations", "a(sssb)", initial: .structs("(sssb)", [])),
                BusProperty("Pending", "t", initial: .uint64(0)),
                BusProperty("Dropped", "t", initial: .uint64(0)),
                BusProperty("LastDeliveryUSec", "t", initial: .uint64(0)),
                BusProperty("LastError", "s", initial: .string("")),
            ],
            signals: [
                BusSignal("Delivered", [BusArg("id", "s"), BusArg("destination", "s")]),
                BusSignal("DeliveryFailed", [BusArg("id", "s"), BusArg("destination", "s"), BusArg("error", "s")]),
            ])
    }

    /// Sends everything pending now (ending any retry wait); the job ends when the outbox is empty, and fails with
    /// the first delivery error after it started.
    static func flush(_ service: UplinkService, context: PluginContext) async throws -> Job {
        try await context.startJob("flush") { job in
            let failure = Mutex<String?>(nil)
            service.wake(flush: true)
            let done = try await service.waitForReports(
                timeout: .seconds(120), check: { service.outbox.pending == 0 }
            ) { report in
                if case .failed(_, let error) = report.kind {
                    failure.withLock { $0 = "uplink destination \"\(report.destination)\": \(error)" }
                    return true
                }
                return false
            }
            if let error = failure.withLock({ $0 }) {
                throw BerthError.failed("uplink flush: \(service.outbox.pending) messages still pending: \(error)")
            }
            if !done {
                throw BerthError(.timeout, "uplink flush: \(service.outbox.pending) messages still pending after 120 s")
            }
            job.log("every message delivered")
        }
    }

    /// Queues one `uplink.Test` message for `destination` only and waits for its confirmation (as acoupi's `check`
    /// does for its messengers). Behind what is already pending: it also proves the queue moves. An unconfirmed test
    /// message is taken out of the outbox again.
    static func test(_ service: UplinkService, destination: String, context: PluginContext) async throws -> Job {
        guard service.config.destinations.contains(where: { $0.name == destination }) else {
            let names = service.config.destinations.map(\.name)
            throw BerthError.notFound(
                "uplink has no destination \(BerthError.quote(destination))"
                    + (names.isEmpty ? " (none is configured)" : "; configured: \(names.joined(separator: ", "))"))
        }
        return try await context.startJob("test") { job in
            let id = service.enqueue(
                UplinkEvent(plugin: "uplink", event: "Test", fields: [("destination", .string(destination))]),
                only: destination)
            job.log("test message \(id) queued for \(destination)")
            let failure = Mutex<String?>(nil)
            let delivered = Mutex(false)
            service.wake(flush: true)
            let ended = try await service.waitForReports(timeout: .seconds(30), check: { false }) { report in
                guard report.destination == destination else { return false }
                switch report.kind {
                case .delivered(let rows) where rows.contains { $0.id == id }:
                    delivered.withLock { $0 = true }
                    return true
                case .failed(_, let error):
                    failure.withLock { $0 = error }
                    return true
                default: return false
                }
            }
            if delivered.withLock({ $0 }) {
                job.log("test message \(id) delivered to \(destination)")
                return
            }
            // Not confirmed: the test message does not stay behind to arrive later.
            let outbox = service.outbox
            _ = try? await OSThread.run(name: "uplink-test") { try outbox.remove(id: id, destination: destination) }
            service.publish()
            if let error = failure.withLock({ $0 }) {
                throw BerthError.failed(
                    "uplink destination \"\(destination)\": the test message was not delivered: \(error)")
            }
            if !ended {
                throw BerthError(.timeout, "uplink destination \"\(destination)\": no confirmation within 30 s")
            }
        }
    }
}
