import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// A plugin whose start failed for a reason that can pass comes back by itself (retried with backoff: 1 s, 2 s,
/// 4 s ... at most 60 s) and by hand (`Manager.RestartPlugin`, `berthctl plugins restart`); one that cannot pass
/// (an invalid config) is not retried. The fixture fails its start while `<state>/flaky/fail-start` exists.
@Suite struct PluginRestartTests {
    static let plugins = ["libTestFixtureFlaky.so"]

    static func marker(_ env: TestEnvironment) -> String { env.stateHome + "/berth/flaky/fail-start" }

    static func setMarker(_ env: TestEnvironment, _ text: String) throws {
        try FileSystem.makeDirectories(env.stateHome + "/berth/flaky", mode: 0o755)
        try FileSystem.writeAtomically(marker(env), text: text)
    }

    /// The monotonic times (µs) of the fixture's start attempts.
    static func attempts(_ env: TestEnvironment) -> [Int64] {
        let text = (try? FileSystem.readText(env.stateHome + "/berth/flaky/attempts")) ?? nil
        return (text ?? "").split(separator: "\n").compactMap { Int64($0) }
    }

    /// State and LastError of a Plugin object, through one client connection (a connection per poll would open
    /// hundreds of bus connections).
    static func state(_ client: BusConnection, _ id: String) async throws -> PluginFailureTests.PluginState {
        let props = try await client.call("org.berth.Berth1", "/org/berth/Berth1/plugin/" + id,
            "org.freedesktop.DBus.Properties", "GetAll", [.string("org.berth.Berth1.Plugin")])
        let map = (props.first?.stringKeyed ?? [:]).mapValues(\.unwrapped)
        return .init(state: map["State"]?.string ?? "?", lastError: map["LastError"]?.string ?? "?")
    }

    static func restart(_ env: TestEnvironment, _ id: String) async throws -> CommandResult {
        try await env.busctl(["call", "org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager", "RestartPlugin", "s", id])
    }

    @Test func aStartFailureThatCanPassIsRetriedWithBackoffUntilThePluginComesBack() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(Self.plugins)
            try Self.setMarker(env, "full\n")
            try await env.startDaemon()
            let (failed, message) = try await PluginFailureTests.state(env, "flaky")
            #expect(failed == .init(state: "failed", lastError: "start-failed"))
            #expect(message == "plugin \"flaky\" failed to start: COMMIT: database or disk is full (while \"\(Self.marker(env))\" exists)")
            // While the disk stays full it is tried again, each wait twice the one before (1 s, then 2 s).
            try await waitUntil("three start attempts", timeout: .seconds(15)) { Self.attempts(env).count >= 3 }
            let times = Self.attempts(env)
            #expect(times[1] - times[0] >= 900_000, "\(times)")
            #expect(times[2] - times[1] >= 1_900_000, "\(times)")
            let (waiting, _) = try await PluginFailureTests.state(env, "flaky")
            #expect(waiting == .init(state: "failed", lastError: "start-failed"))
            // Space returns: the next attempt (4 s later) succeeds without anyone's help.
            try FileManager.default.removeItem(atPath: Self.marker(env))
            let client = try env.connect()
            try await waitUntil("flaky is active again", timeout: .seconds(20)) {
                try await Task.sleep(for: .milliseconds(100))
                return try await Self.state(client, "flaky") == .init(state: "active", lastError: "")
            }
            let up = try await env.busctl(["get-property", "org.berth.Berth1", "/org/berth/Berth1/flaky", "org.berth.Berth1.Flaky", "Up"])
            #expect(up.stdout == "b true\n", "\(up)")
            // Once it runs no more attempts are made.
            let count = Self.attempts(env).count
            try await Task.sleep(for: .milliseconds(1500))
            #expect(Self.attempts(env).count == count)
        }
    }

    @Test func restartPluginBringsBackAPluginThatIsNotRetriedAndRestartsAnActiveOne() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(Self.plugins + ["libTestFixtureGood.so"])
            try Self.setMarker(env, "permanent\n")
            try await env.startDaemon()
            let (failed, message) = try await PluginFailureTests.state(env, "flaky")
            #expect(failed == .init(state: "failed", lastError: "invalid-config"), "\(message)")
            // A failure that cannot pass is not retried.
            try await Task.sleep(for: .milliseconds(2500))
            #expect(Self.attempts(env).count == 1)

            // Fixed by hand, then restarted by hand.
            try FileManager.default.removeItem(atPath: Self.marker(env))
            let r = try await Self.restart(env, "flaky")
            #expect(r.status == 0, "\(r)")
            #expect(try await PluginFailureTests.state(env, "flaky").0 == .init(state: "active", lastError: ""))
            #expect(Self.attempts(env).count == 2)

            // An active plugin is stopped and started again: its object goes and comes back.
            let client = try env.connect()
            let removed = try await client.signals(path: "/org/berth/Berth1", interface: "org.freedesktop.DBus.ObjectManager")
            var events = removed.makeAsyncIterator()
            let again = try await env.berthctl(["plugins", "restart", "flaky", "--address", env.bus.address])
            #expect(again.status == 0 && again.stdout == "plugin flaky restarted: active\n", "\(again)")
            #expect(Self.attempts(env).count == 3)
            let first = try #require(await events.next())
            #expect(first.member == "InterfacesRemoved" && first.arguments.first == .objectPath("/org/berth/Berth1/flaky"))
            let second = try #require(await events.next())
            #expect(second.member == "InterfacesAdded" && second.arguments.first == .objectPath("/org/berth/Berth1/flaky"))

            // A restart whose start fails says why, and leaves the plugin failed (and retried: the reason can pass).
            try Self.setMarker(env, "full\n")
            let failing = try await Self.restart(env, "flaky")
            #expect(failing.status != 0 && failing.stderr.contains("database or disk is full"), "\(failing)")
            #expect(try await PluginFailureTests.state(env, "flaky").0 == .init(state: "failed", lastError: "start-failed"))

            // The other plugin never noticed.
            #expect(try await PluginFailureTests.state(env, "fixture").0 == .init(state: "active", lastError: ""))
        }
    }

    @Test func restartPluginOfAnUnknownIDIsNotFound() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libTestFixtureGood.so"])
            try await env.startDaemon()
            let client = try env.connect()
            do {
                _ = try await client.call("org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager", "RestartPlugin",
                    [.string("nosuch")])
                Issue.record("RestartPlugin(\"nosuch\") succeeded")
            } catch let error as DBusError {
                #expect(error.name == "org.berth.Berth1.Error.NotFound", "\(error)")
                #expect(error.message == "plugin \"nosuch\" does not exist (plugins: fixture)", "\(error)")
            }
            let cli = try await env.berthctl(["plugins", "restart", "nosuch", "--address", env.bus.address])
            #expect(cli.status != 0 && cli.stderr.contains("plugin \"nosuch\" does not exist"), "\(cli)")
        }
    }
}
