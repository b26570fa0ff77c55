import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// The D-Bus contract (introspection matches dbus/org.berth.Berth1.Uplink.xml), an independent client (busctl),
/// berthctl uplink, and reload.
@Suite(.serialized) struct UplinkBusTests {
    @Test func checkedInXMLMatchesLiveIntrospection() async throws {
        try await TestEnvironment.with { env in
            let world = try UplinkWorld(env)
            try await world.start(config: "")
            let (file, live) = try await IntrospectionXML.compare(
                env, path: UplinkWorld.path, interface: UplinkWorld.interface)
            #expect(
                file == live,
                "dbus/org.berth.Berth1.Uplink.xml differs from live introspection; regenerate with BERTH_UPDATE_DBUS_XML=1"
            )
        }
    }

    @Test func berthctlUplink() async throws {
        try await TestEnvironment.with { env in
            // The subscriber's session exists before the outage, so it misses nothing published meanwhile.
            let broker = try Broker(in: env.root)
            try await broker.start()
            let subscriber = try await broker.subscribe()
            try await broker.stop()
            let world = try UplinkWorld(env)
            try broker.writeCredentials(world.credentialsFile)
            try await world.start(config: world.mqttConfig(broker))  // the broker is down for now
            try await world.deploy("waiting.txt")
            try await waitUntil("1 pending") { try await world.pending() == 1 }

            let status = try await env.berthctl(["uplink", "status"])
            #expect(status.status == 0, "\(status)")
            #expect(status.stdout.contains("broker") && status.stdout.contains("mqtt://127.0.0.1:\(broker.port)"))
            #expect(status.stdout.contains("pending: 1"), "\(status.stdout)")
            let json = try await env.berthctl(["uplink", "status", "--json"])
            let parsed = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any] ?? [:]
            #expect(parsed["pending"] as? Int == 1)
            #expect(((parsed["destinations"] as? [[String: Any]])?.first?["connected"]) as? Bool == false)

            let pending = try await env.berthctl(["uplink", "pending", "--json"])
            let rows = try JSONSerialization.jsonObject(with: Data(pending.stdout.utf8)) as? [[String: Any]] ?? []
            #expect(rows.count == 1 && rows.first?["event"] as? String == "pickup.Deployed", "\(pending)")

            let doctor = try await env.berthctl(["doctor"])
            #expect(
                doctor.stdout.contains("uplink broker") && doctor.stdout.contains("is not reachable now"), "\(doctor)")

            let failedTest = try await env.berthctl(["uplink", "test", "broker"])
            #expect(failedTest.status != 0 && failedTest.stderr.contains("127.0.0.1:\(broker.port)"), "\(failedTest)")
            let unknown = try await env.berthctl(["uplink", "test", "nowhere"])
            #expect(unknown.status != 0 && unknown.stderr.contains("no destination \"nowhere\""), "\(unknown)")

            // An independent client sees the same properties.
            let busctl = try await env.busctl([
                "get-property", "org.berth.Berth1", UplinkWorld.path, UplinkWorld.interface, "Pending",
            ])
            #expect(busctl.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "t 1", "\(busctl)")

            try await broker.start()
            let flush = try await env.berthctl(["uplink", "flush"])
            #expect(flush.status == 0, "\(flush)")
            #expect(try await world.pending() == 0)
            _ = try await subscriber.waitForEvents(1)
            let test = try await env.berthctl(["uplink", "test", "broker"])
            #expect(test.status == 0 && test.stdout.contains("done"), "\(test)")
        }
    }

    @Test func reloadChangesOnlyWhatChanged() async throws {
        try await TestEnvironment.with { env in
            let (broker, subscriber, world) = try await UplinkWorld.withBroker(env)
            let receiver = try await Receiver(in: env.root)
            try await world.start(config: world.mqttConfig(broker))
            try await world.deploy("before.txt")
            _ = try await subscriber.waitForEvents(1)
            let connects = broker.log.components(separatedBy: "New client connected").count
            // Add an HTTP destination: the MQTT session stays as it is (no new CONNECT) ...
            let desk = [
                "    desk:", "      kind: http", "      url: http://127.0.0.1:\(receiver.port)/",
                "      events: [pickup.*]",
            ]
            // ... and narrow the broker's route, which keeps its connection too.
            let config =
                world.mqttConfig(broker).replacingOccurrences(
                    of: "events: [pickup.*]", with: "events: [pickup.Deployed]")
                + desk.joined(separator: "\n") + "\n"
            try env.writeConfig(config)
            _ = try await world.client.call(
                "org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager", "Reload")
            try await waitUntil("two destinations") { (try await world.property("Destinations").items?.count) == 2 }
            try await world.deploy("after.txt")
            try await waitUntil("the receiver has after.txt") {
                receiver.received.map { $0.body }.fieldValues("name") == ["after.txt"]
            }
            _ = try await subscriber.waitForEvents(2)
            #expect(broker.log.components(separatedBy: "New client connected").count == connects)
        }
    }

    @Test func exportConfigLeavesOutCredentials() async throws {
        try await TestEnvironment.with { env in
            let world = try UplinkWorld(env)
            try FileSystem.writeAtomically(world.credentialsFile, text: "username: u\npassword: hunter2\n", mode: 0o600)
            try await world.start(
                config: UplinkWorld.config([
                    "host: 127.0.0.1", "port: \(freePort())", "credentials: \(world.credentialsFile)",
                ]))
            let yaml =
                try await world.client.call(
                    "org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager", "ExportConfig"
                ).first?.string ?? ""
            #expect(yaml.contains("uplink:") && yaml.contains("broker:") && yaml.contains("kind: mqtt"), "\(yaml)")
            #expect(!yaml.contains("credentials") && !yaml.contains("hunter2"), "\(yaml)")
            // What was exported imports back unchanged; a changed destination plans as an update (UplinkImportTests
            // apply them).
            let file = env.root + "/import.yaml"
            try FileSystem.writeAtomically(file, text: yaml)
            let plan = try await world.client.call(
                "org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager", "ImportConfig",
                [.string(file), .bool(false), .bool(true)])
            let rows = (plan.first?.items ?? []).map { ($0.items ?? []).map { $0.string ?? "" } }
            #expect(rows.contains(["uplink-destination", "broker", "unchanged"]), "\(rows)")
            try FileSystem.writeAtomically(
                file, text: yaml.replacingOccurrences(of: "berth/{host}/{plugin}/{event}", with: "fleet/{host}/{event}")
            )
            let changed = try await world.client.call(
                "org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager", "ImportConfig",
                [.string(file), .bool(false), .bool(true)])
            let changedRows = (changed.first?.items ?? []).map { ($0.items ?? []).map { $0.string ?? "" } }
            #expect(changedRows.contains(["uplink-destination", "broker", "update"]), "\(changedRows)")
        }
    }

    @Test func recorderCheckListsTheDestinations() async throws {
        try await TestEnvironment.with { env in
            let world = try UplinkWorld(env)
            try env.installPlugins(["libRecorderPlugin.so"])
            let port = freePort()  // nothing listens: the destination is not reachable
            try await world.start(config: UplinkWorld.config(["host: 127.0.0.1", "port: \(port)"]))
            try await waitUntil("the destination failed once") {
                !(try await world.property("LastError").string ?? "").isEmpty
            }
            let check = try await env.berthctl(["recorder", "check"])
            #expect(
                (check.stdout + check.stderr).contains("uplink broker: mqtt://127.0.0.1:\(port) is not reachable now"),
                "\(check)")
            let json = try await env.berthctl(["recorder", "check", "--json"])
            let rows = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]] ?? []
            #expect(rows.contains { $0["name"] as? String == "uplink broker" && $0["status"] as? String == "warn" })
        }
    }
}
