import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// Delivery to a real Mosquitto broker (password file, persistence) started by each test on 127.0.0.1, with
/// pickup's real `Deployed` signals as the events.
@Suite(.serialized) struct UplinkMQTTTests {
    @Test func everyRoutedEventArrivesOnceWithItsFields() async throws {
        try await TestEnvironment.with { env in
            let (broker, subscriber, world) = try await UplinkWorld.withBroker(env)
            try await world.start(config: world.mqttConfig(broker))
            let names = ["a.txt", "b.txt", "c.txt"]
            var ids: [String] = []
            for name in names { ids.append(try await world.deploy(name)) }
            let events = try await subscriber.waitForEvents(3)
            try await waitUntil("nothing pending") { try await world.pending() == 0 }
            try await Task.sleep(for: .milliseconds(300))
            #expect(subscriber.events.count == 3, "each event arrives once")
            #expect(events.fieldValues("name") == names)
            #expect(events.fieldValues("id") == ids)
            let machineID = try String(contentsOfFile: "/etc/machine-id", encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            for event in events {
                #expect(event["schema"] as? Int == 1)
                #expect(event["host"] as? String == "testhost")
                #expect(event["machine_id"] as? String == machineID)
                #expect(event["plugin"] as? String == "pickup")
                #expect(event["event"] as? String == "Deployed")
                #expect(((event["time_usec"] as? NSNumber)?.uint64Value ?? 0) > 0)
                #expect(((event["fields"] as? [String: Any])?["sha256"] as? String)?.count == 64)
                #expect(((event["fields"] as? [String: Any])?["target"] as? String) == "files")
            }
            #expect(Set(events.compactMap { $0["id"] as? String }).count == 3, "message ids are unique")
            let topics = subscriber.messages.filter { $0.json != nil }.map(\.topic)
            #expect(topics == Array(repeating: "berth/testhost/pickup/Deployed", count: 3))
            // The retained birth message.
            #expect(subscriber.messages.contains { $0.topic == "berth/testhost/status" && $0.payload == "online" })
            let destinations = try await world.property("Destinations")
            let row = destinations.items?.first?.items ?? []
            #expect(row.map { $0.string ?? "" }.prefix(3) == ["broker", "mqtt", "mqtt://127.0.0.1:\(broker.port)"])
            #expect(row.last?.bool == true)
            #expect((try await world.property("LastDeliveryUSec").uint64 ?? 0) > 0)
            #expect(try await world.property("LastError").string == "")
        }
    }

    @Test func brokerDownThenUpDeliversEverythingInOrder() async throws {
        try await TestEnvironment.with { env in
            let (broker, subscriber, world) = try await UplinkWorld.withBroker(env)
            try await world.start(config: world.mqttConfig(broker))
            try await world.deploy("first.txt")
            _ = try await subscriber.waitForEvents(1)
            try await broker.stop()
            let names = (0..<30).map { "outage-\($0).txt" }
            for name in names { try await world.deploy(name) }
            try await waitUntil("30 pending") { try await world.pending() == 30 }
            try await waitUntil("a clear LastError") {
                (try await world.property("LastError").string ?? "").contains("127.0.0.1:\(broker.port)")
            }
            let connected = try await world.property("Destinations").items?.first?.items?.last?.bool
            #expect(connected == false)
            try await broker.start()
            let events = try await subscriber.waitForEvents(31, timeout: .seconds(30))
            #expect(events.deduplicated.fieldValues("name") == ["first.txt"] + names, "in order, none missing")
            try await waitUntil("nothing pending") { try await world.pending() == 0 }
        }
    }

    @Test func killNineWithMessagesPendingLosesNone() async throws {
        try await TestEnvironment.with { env in
            let broker = try Broker(in: env.root)  // not started: everything waits in the outbox
            let world = try UplinkWorld(env)
            try broker.writeCredentials(world.credentialsFile)
            try await world.start(config: world.mqttConfig(broker))
            let names = (0..<20).map { "pending-\($0).txt" }
            for name in names { try await world.deploy(name) }
            try await waitUntil("20 pending") { try await world.pending() == 20 }
            let listed = try await world.call("ListPending", [.uint32(100)]).first?.items ?? []
            #expect(listed.count == 20)
            #expect(listed.first?.items?[2].string == "pickup.Deployed")
            world.daemon?.signal(SIGKILL)
            _ = try await world.daemon?.waitForExit()
            try await broker.start()
            let subscriber = try await broker.subscribe()
            try await world.startDaemon()
            let events = try await subscriber.waitForEvents(20, timeout: .seconds(30))
            #expect(events.deduplicated.fieldValues("name") == names)
            try await waitUntil("nothing pending") { try await world.pending() == 0 }
        }
    }

    @Test func wrongPasswordGivesAClearErrorAndKeepsTheMessages() async throws {
        try await TestEnvironment.with { env in
            let broker = try Broker(in: env.root)
            try await broker.start()
            let world = try UplinkWorld(env)
            try broker.writeCredentials(world.credentialsFile, password: "wrong")
            try await world.start(config: world.mqttConfig(broker))
            try await world.deploy("x.txt")
            try await world.deploy("y.txt")
            try await waitUntil("LastError names the refusal") {
                let error = try await world.property("LastError").string ?? ""
                return error.contains("refused") && error.contains("broker")
            }
            let error = try await world.property("LastError").string ?? ""
            #expect(error.lowercased().contains("not authori"), "\(error)")
            try await waitUntil("both kept") { try await world.pending() == 2 }
            let test = try await world.finish(world.call("Test", [.string("broker")]))
            #expect(test.0 == "failed")
            #expect(test.1.contains("not authori"), "\(test.1)")
        }
    }

    @Test func tlsWithATestCA() async throws {
        try await TestEnvironment.with { env in
            let ca = try TestCA(in: env.root + "/ca")
            let broker = try Broker(in: env.root, tls: ca)
            try await broker.start()
            let subscriber = try await broker.subscribe()
            let world = try UplinkWorld(env)
            try broker.writeCredentials(world.credentialsFile)
            try await world.start(config: world.mqttConfig(broker, extra: ["tls_ca: \(ca.caFile)"]))
            try await world.deploy("secure.txt")
            let events = try await subscriber.waitForEvents(1)
            #expect(events.fieldValues("name") == ["secure.txt"])
            let url = try await world.property("Destinations").items?.first?.items?[2].string
            #expect(url == "mqtts://127.0.0.1:\(broker.port)")
        }
    }

    @Test func testMethodSendsAMessageAndFlushEnds() async throws {
        try await TestEnvironment.with { env in
            let (broker, subscriber, world) = try await UplinkWorld.withBroker(env)
            try await world.start(config: world.mqttConfig(broker))
            let signals = try await env.connect().signals(path: UplinkWorld.path, interface: UplinkWorld.interface)
            let result = try await world.finish(world.call("Test", [.string("broker")]))
            #expect(result.0 == "done", "\(result.1)")
            let test = try await subscriber.waitForEvents(1) { $0["event"] as? String == "Test" }
            #expect(subscriber.messages.contains { $0.topic == "berth/testhost/uplink/Test" })
            var delivered: BusSignalMessage?
            for await signal in signals where signal.member == "Delivered" {
                delivered = signal
                break
            }
            #expect(delivered?.arguments.map { $0.string ?? "" } == [test[0]["id"] as? String ?? "", "broker"])
            let flush = try await world.finish(world.call("Flush"))
            #expect(flush.0 == "done")
            do {
                _ = try await world.call("Test", [.string("nowhere")])
                Issue.record("Test(nowhere) succeeded")
            } catch let error as DBusError {
                #expect(error.name == "org.berth.Berth1.Error.NotFound")
                #expect(error.message.contains("\"nowhere\""))
            }
        }
    }

    @Test func heartbeatIsComputed() async throws {
        try await TestEnvironment.with { env in
            let (broker, subscriber, world) = try await UplinkWorld.withBroker(env)
            let config = UplinkWorld.config(
                [
                    "host: 127.0.0.1", "port: \(broker.port)", "credentials: \(world.credentialsFile)",
                    "events: [uplink.Heartbeat]",
                ]
            ).replacingOccurrences(of: "heartbeat: 0s", with: "heartbeat: 300ms")
            try await world.start(config: config)
            let beats = try await subscriber.waitForEvents(2) { $0["event"] as? String == "Heartbeat" }
            let fields = beats[1]["fields"] as? [String: Any] ?? [:]
            #expect(beats.allSatisfy { ($0["fields"] as? [String: Any])?["status"] as? String == "ok" }, "\(beats)")
            let plugins = fields["plugins"] as? [String: Any] ?? [:]
            #expect(plugins["pickup"] as? String == "active")
            #expect(plugins["uplink"] as? String == "active")
            #expect(((fields["free_bytes"] as? NSNumber)?.uint64Value ?? 0) > 0)
            #expect(fields["dropped"] as? Int == 0)
            let destinations = fields["destinations"] as? [String: Any] ?? [:]
            #expect((destinations["broker"] as? [String: Any])?["connected"] as? Bool == true)
        }
    }
}
