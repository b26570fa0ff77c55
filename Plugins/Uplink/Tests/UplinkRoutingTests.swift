import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// Events from other plugins through the bus (services' state changes), and kill -9 in the middle of delivery.
@Suite(.serialized) struct UplinkRoutingTests {
    @Test func serviceStateChangesAreRouted() async throws {
        try await TestEnvironment.with { env in
            let broker = try Broker(in: env.root)
            try await broker.start()
            let subscriber = try await broker.subscribe()
            let world = try UplinkWorld(env)
            try env.installPlugins(["libServicesPlugin.so"])
            try broker.writeCredentials(world.credentialsFile)
            let config =
                "services:\n  units:\n    sleeper:\n      exec: sleep 300\n      stop_timeout: 2s\n"
                + UplinkWorld.config(
                    [
                        "host: 127.0.0.1", "port: \(broker.port)", "credentials: \(world.credentialsFile)",
                        "events: [services.StateChanged]",
                    ])
            try await world.start(config: config)
            let services = "/org/berth/Berth1/services"
            let start = try await world.client.call(
                "org.berth.Berth1", services, "org.berth.Berth1.Services", "Start", [.string("sleeper")])
            #expect(try await world.finish(start).0 == "done")
            let stop = try await world.client.call(
                "org.berth.Berth1", services, "org.berth.Berth1.Services", "Stop", [.string("sleeper")])
            #expect(try await world.finish(stop).0 == "done")
            let events = try await subscriber.waitForEvents(1) {
                ($0["fields"] as? [String: Any])?["state"] as? String == "inactive"
            }
            let all = subscriber.events
            #expect(
                all.allSatisfy { $0["plugin"] as? String == "services" && $0["event"] as? String == "StateChanged" })
            #expect(all.fieldValues("name").allSatisfy { $0 == "sleeper" })
            let states = all.fieldValues("state")
            #expect(states.contains("active") && states.last == "inactive", "\(states)")
            #expect(subscriber.messages.contains { $0.topic == "berth/testhost/services/StateChanged" })
            _ = events
        }
    }

    @Test func killNineDuringDeliveryLosesNone() async throws {
        try await TestEnvironment.with { env in
            // The subscriber's session exists before the outage, so it misses nothing published meanwhile.
            let broker = try Broker(in: env.root)
            try await broker.start()
            let subscriber = try await broker.subscribe()
            try await broker.stop()
            let world = try UplinkWorld(env)
            try broker.writeCredentials(world.credentialsFile)
            try await world.start(config: world.mqttConfig(broker))
            let names = (0..<300).map { "burst-\($0).txt" }
            for name in names { try await world.deploy(name) }
            try await waitUntil("300 pending") { try await world.pending() == 300 }
            try await broker.start()
            // Kill as soon as the first messages arrive: the rest are in flight or still queued.
            try await waitUntil("delivery has begun", timeout: .seconds(20)) { !subscriber.events.isEmpty }
            world.daemon?.signal(SIGKILL)
            _ = try await world.daemon?.waitForExit()
            try await world.startDaemon()
            let events = try await subscriber.waitForEvents(300, timeout: .seconds(30))
            #expect(events.deduplicated.fieldValues("name") == names, "every message, in order")
            try await waitUntil("nothing pending") { try await world.pending() == 0 }
        }
    }
}

/// A credentials file others may read: the plugin does not start, and says why on its Plugin object.
@Suite struct UplinkCredentialsTests {
    @Test func readableCredentialsFileFailsThePlugin() async throws {
        try await TestEnvironment.with { env in
            let world = try UplinkWorld(env)
            try FileSystem.writeAtomically(world.credentialsFile, text: "username: u\npassword: p\n", mode: 0o644)
            try env.writeConfig(
                UplinkWorld.config(["host: 127.0.0.1", "port: \(freePort())", "credentials: \(world.credentialsFile)"]))
            try await env.startDaemon()
            let plugin = "/org/berth/Berth1/plugin/uplink"
            try await waitUntil("the plugin failed") {
                (try? await world.client.getProperty("org.berth.Berth1", plugin, "org.berth.Berth1.Plugin", "State"))?
                    .string == "failed"
            }
            let message =
                try await world.client.getProperty(
                    "org.berth.Berth1", plugin, "org.berth.Berth1.Plugin", "LastErrorMessage"
                ).string ?? ""
            #expect(message.contains(world.credentialsFile) && message.contains("chmod 600"), "\(message)")
        }
    }
}
