import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// ImportConfig/ExportConfig: everything is checked before anything changes; dry_run reports what would change.
@Suite struct ConfigAsCodeTests {
    static func items(_ env: TestEnvironment) async throws -> String {
        try await env.busctl(["get-property", "org.berth.Berth1", "/org/berth/Berth1/fixture", "org.berth.Berth1.Fixture",
            "Items"]).stdout
    }

    @Test func dryRunThenImportThenReplace() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libTestFixtureGood.so"])
            try env.writeConfig("fixture:\n  items: {a: '1', b: '2'}\n")
            try await env.startDaemon()
            let file = env.root + "/import.yaml"
            try FileSystem.writeAtomically(file, text: "fixture:\n  items:\n    a: '1'\n    b: '3'\n    c: '4'\n")
            let dry = try await env.busctl(["call", "org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager",
                "ImportConfig", "sbb", file, "false", "true"])
            #expect(dry.stdout == "a(sss) 3 \"item\" \"a\" \"unchanged\" \"item\" \"b\" \"update\" \"item\" \"c\" \"create\"\n", "\(dry)")
            #expect(try await Self.items(env) == "a{ss} 2 \"a\" \"1\" \"b\" \"2\"\n")

            let applied = try await env.berthctl(["config", "import", file, "--address", env.bus.address])
            #expect(applied.status == 0 && applied.stdout.contains("c     create"), "\(applied)")
            #expect(try await Self.items(env) == "a{ss} 3 \"a\" \"1\" \"b\" \"3\" \"c\" \"4\"\n")

            try FileSystem.writeAtomically(file, text: "fixture:\n  items: {c: '4'}\n")
            let replaced = try await env.berthctl(["config", "import", file, "--replace", "--json", "--address", env.bus.address])
            #expect(replaced.stdout.contains("{\"kind\":\"item\",\"name\":\"a\",\"action\":\"delete\"}"), "\(replaced)")
            #expect(try await Self.items(env) == "a{ss} 1 \"c\" \"4\"\n")

            let exported = try await env.berthctl(["config", "export", "--address", env.bus.address])
            #expect(exported.stdout == "fixture:\n  items:\n    c: \"4\"\n", "\(exported)")
        }
    }

    @Test func oneBadItemChangesNothing() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libTestFixtureGood.so"])
            try env.writeConfig("fixture:\n  items: {a: '1'}\n")
            try await env.startDaemon()
            let file = env.root + "/bad.yaml"
            // A good section for the fixture and a section for a plugin that does not exist: nothing applies.
            try FileSystem.writeAtomically(file, text: "fixture:\n  items: {a: '9'}\nnosuch:\n  x: 1\n")
            let r = try await env.busctl(["call", "org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager",
                "ImportConfig", "sbb", file, "false", "false"])
            #expect(r.status != 0 && r.stderr.contains("\(file):3: nosuch: no active plugin \"nosuch\""), "\(r)")
            // A bad value inside the section: InvalidConfig with file and line, nothing applies.
            try FileSystem.writeAtomically(file, text: "fixture:\n  items: {a: '9'}\n  colour: red\n")
            let client = try env.connect()
            do {
                _ = try await client.call("org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager", "ImportConfig",
                    [.string(file), .bool(false), .bool(false)])
                Issue.record("a bad import was accepted")
            } catch let error as DBusError {
                #expect(error.name == "org.berth.Berth1.Error.InvalidConfig")
                #expect(error.message.contains("\(file):3: fixture.colour: unknown key"), "\(error.message)")
            }
            #expect(try await Self.items(env) == "a{ss} 1 \"a\" \"1\"\n")
        }
    }
}
