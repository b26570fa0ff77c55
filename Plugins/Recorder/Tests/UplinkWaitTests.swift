import BerthKit
import BerthTestSupport
import Synchronization
import Testing

@testable import RecorderPlugin

/// `saving.wait_for_uplink`: a recording whose detections the uplink still has to deliver is not deleted. The
/// uplink here is a D-Bus object on a private dbus-daemon answering `ListPending` with messages that carry the
/// recording's id, as the uplink plugin's outbox does for routed `Detection` signals; the recorder asks it over the
/// bus, as it asks the real one.
@Suite(.serialized) struct UplinkWaitTests {
    final class Outbox: Sendable {
        let pending = Mutex<[String]>([])
        let asked = Mutex(0)
    }

    static func uplinkObject(_ outbox: Outbox) -> BusInterface {
        BusInterface(
            UplinkProbe.interface,
            methods: [
                .sync("ListPending", in: [BusArg("limit", "u")], out: [BusArg("messages", "a(ssts)")]) { _ in
                    outbox.asked.withLock { $0 += 1 }
                    let rows = outbox.pending.withLock { $0 }.enumerated().map { index, id -> [DBusValue] in
                        [
                            .string("msg-\(index)"), .string("broker"), .uint64(0),
                            .string(#"{"event": "Detection", "recording_id": "\#(id)", "label": "tone"}"#),
                        ]
                    }
                    return [.structs("(ssts)", rows)]
                }
            ])
    }

    @Test func aRecordingWaitsForTheUplinkToDeliverItsDetections() async throws {
        let f = try EngineFixture("uplink-wait")
        let bus = try await PrivateBus.start(in: f.dir.path)
        defer { bus.stop() }
        let outbox = Outbox()
        let other = try BusConnection(.address(bus.address), description: "uplink2")
        let object = try await other.export(path: UplinkProbe.path, interfaces: [Self.uplinkObject(outbox)])
        defer { object.remove() }
        try await other.requestName("org.berth.Test.Uplink")
        let client = try BusConnection(.address(bus.address), description: "recorder")
        let probe = UplinkProbe(connection: client, destination: "org.berth.Test.Uplink")
        outbox.pending.withLock { $0 = ["00000000-0000-4000-8000-000000000000"] }
        #expect(try await probe.pendingRecordings() == .pending(["00000000-0000-4000-8000-000000000000"]))
        #expect(outbox.asked.withLock { $0 } == 1)

        let tones = try ToneFixture(directory: f.dir.path)
        var saving = SavingConfig()
        saving.minScore = 0.99  // both detections score lower: delete, once delivered
        saving.waitForUplink = true
        saving.uplinkGraceSeconds = 0.2
        let config = f.toneConfig(tones, processors: [ToneFixture.processor()], saving: saving)
        let engine = RecorderEngine(
            config: config, logger: Logger(label: "test.recorder"), events: f.log.recorderEvents,
            uplink: UplinkProbe(connection: client, destination: "org.berth.Test.Uplink"))
        try await engine.start()
        let store = try engine.requireRuntime().store
        // The uplink has queued the detections and not delivered them yet.
        let first = try await engine.recordNow(seconds: 1.0)
        outbox.pending.withLock { $0 = [first.id] }
        #expect(try await eventually { try store.runCount(recordingID: first.id, processor: "tones").state == "done" })
        #expect(await eventually { outbox.asked.withLock { $0 } >= 3 })
        #expect(try store.recording(id: first.id)?.kept == nil)
        #expect(FileIO.fileSize(first.path) != nil, "deleted while its detections were still pending in the uplink")
        #expect(engine.status()["recordings_pending"] == .uint(1))
        // Delivered: now it goes.
        outbox.pending.withLock { $0 = [] }
        #expect(await f.log.waitForDeleted(first.id, seconds: 15))
        #expect(FileIO.fileSize(first.path) == nil)
        #expect(try store.recording(id: first.id)?.deletedReason == "saving filters: none passed (min_score 0.99)")
        await engine.shutdown()

        // No uplink object on the bus: nothing is routed, nothing is waited for.
        let alone = RecorderEngine(
            config: config, logger: Logger(label: "test.recorder"), events: f.log.recorderEvents,
            uplink: UplinkProbe(connection: client, destination: "org.berth.Test.Nobody"))
        try await alone.start()
        let second = try await alone.recordNow(seconds: 1.0)
        #expect(await f.log.waitForDeleted(second.id, seconds: 15))
        await alone.shutdown()
        client.close()
        other.close()
    }

    @Test func recordingIDsAreFoundInAnyShapeOfMessage() {
        let id = RecordingID.make()
        var ids: Set<String> = []
        UplinkProbe.collectIDs(
            .array(
                element: "a{sv}",
                [.vardict([("content", .variant(.string("{\"recording_id\":\"\(id.uppercased())\"}"))), ("n", .uint32(1))])]),
            into: &ids)
        #expect(ids == [id])
        #expect(UplinkProbe.uuids(in: "x-\(id)-y \(id.uppercased())") == [id, id])
        #expect(UplinkProbe.uuids(in: "deadbeef-0000") == [])
    }
}
