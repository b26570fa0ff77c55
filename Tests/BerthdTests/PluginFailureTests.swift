import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// Every bad-plugin case leaves that plugin `failed` with a clear LastError and the daemon running with the others.
@Suite struct PluginFailureTests {
    struct PluginState: Equatable {
        var state: String
        var lastError: String
    }

    static func state(_ env: TestEnvironment, _ id: String) async throws -> (PluginState, String) {
        let client = try env.connect()
        let props = try await client.call("org.berth.Berth1", "/org/berth/Berth1/plugin/" + id,
            "org.freedesktop.DBus.Properties", "GetAll", [.string("org.berth.Berth1.Plugin")])
        let map = (props.first?.stringKeyed ?? [:]).mapValues(\.unwrapped)
        return (PluginState(state: map["State"]?.string ?? "?", lastError: map["LastError"]?.string ?? "?"),
            map["LastErrorMessage"]?.string ?? "")
    }

    @Test func everyBadPluginFailsCleanlyAndTheGoodOneRuns() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libTestFixtureGood.so", "libTestFixtureBadABI.so", "libTestFixtureNoEntry.so"])
            // A dangling link (missing file), a text file (not ELF), a C library (ELF, not Swift).
            try FileManager.default.createSymbolicLink(atPath: env.pluginDir + "/libGone.so", withDestinationPath: "/nonexistent/libGone.so")
            try FileSystem.writeAtomically(env.pluginDir + "/libText.so", text: "not a library\n")
            let cLibrary = try #require(["/usr/lib/x86_64-linux-gnu/libyaml-0.so.2", "/lib/x86_64-linux-gnu/libyaml-0.so.2"]
                .first { FileManager.default.fileExists(atPath: $0) })
            try FileSystem.writeAtomically(env.pluginDir + "/libPlainC.so", try #require(try FileSystem.read(cLibrary)))
            let daemon = try await env.startDaemon()

            let expected: [(String, String, String)] = [
                ("gone", "not-found", "does not exist"),
                ("text", "not-elf", "is not an ELF shared library"),
                ("plainc", "not-swift", "is not a Swift library"),
                ("testfixturenoentry", "no-entry-symbol", "does not export berth_plugin_entry"),
                ("testfixturebadabi", "abi-mismatch", "was built against \"berthkit 0.0 api 0\""),
            ]
            for (id, code, text) in expected {
                let (state, message) = try await Self.state(env, id)
                #expect(state == PluginState(state: "failed", lastError: code), "\(id)")
                #expect(message.contains(text) && message.contains(env.pluginDir), "\(id): \(message)")
            }
            let (good, _) = try await Self.state(env, "fixture")
            #expect(good == PluginState(state: "active", lastError: ""))
            #expect(daemon.isRunning)
            let ping = try await env.busctl(["call", "org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager", "Ping"])
            #expect(ping.status == 0)
        }
    }

    @Test func aPluginWhoseStartThrowsIsFailedWithTheReason() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libTestFixtureGood.so"])
            try env.writeConfig("fixture:\n  fail_start: true\n")
            try await env.startDaemon()
            let (state, message) = try await Self.state(env, "fixture")
            #expect(state == PluginState(state: "failed", lastError: "start-failed"))
            #expect(message == "plugin \"fixture\" failed to start: fail_start is set in the fixture's section")
            // Its objects are gone; the Manager still answers.
            let object = try await env.busctl(["introspect", "org.berth.Berth1", "/org/berth/Berth1/fixture"])
            #expect(!object.stdout.contains("org.berth.Berth1.Fixture"))
        }
    }

    @Test func anInvalidPluginSectionFailsThatPluginWithFileKeyAndLine() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libTestFixtureGood.so"])
            try env.writeConfig("log_level: info\nfixture:\n  greeting: [a, b]\n")
            try await env.startDaemon()
            let (state, message) = try await Self.state(env, "fixture")
            #expect(state == PluginState(state: "failed", lastError: "invalid-config"))
            #expect(message.hasPrefix("\(env.configFile):3: fixture.greeting: "), "\(message)")
        }
    }

    @Test func disabledPluginsAreNotStarted() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libTestFixtureGood.so"])
            try env.writeConfig("disabled_plugins: [fixture]\n")
            try await env.startDaemon()
            let (state, _) = try await Self.state(env, "fixture")
            #expect(state.state == "disabled")
        }
    }
}
