import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// Definitions: the config section, Define/Remove persisted across restarts, reload by difference, bad specs.
@Suite struct ServicesConfigTests {
    @Test func reloadTouchesOnlyChangedServices() async throws {
        try await TestEnvironment.with { env in
            let world = try await ServicesWorld.start(
                env,
                config: """
                    services:
                      autolaunch: [a, b, gone]
                      units:
                        a: { exec: [sleep, "300"] }
                        b: { exec: [sleep, "301"] }
                        gone: { exec: [sleep, "302"] }
                    """)
            for name in ["a", "b", "gone"] { try await world.waitForState(name, "active") }
            let (a, b, gone) = (
                try await world.mainPID("a"), try await world.mainPID("b"), try await world.mainPID("gone")
            )
            try env.writeConfig(
                """
                services:
                  autolaunch: [a, b, c]
                  units:
                    a: { exec: [sleep, "300"] }
                    b: { exec: [sleep, "303"] }
                    c: { exec: [sleep, "304"] }
                """)
            let reload = try await env.busctl([
                "call", "org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager", "Reload",
            ])
            #expect(reload.status == 0, "\(reload)")
            try await world.waitForState("c", "active")
            try await waitUntil("b runs its new definition") {
                let pid = try await world.mainPID("b")
                let state = try await world.state("b")
                return pid != b && state == "active"
            }
            #expect(try await world.mainPID("a") == a)
            #expect(processGroupMembers(gone).isEmpty)
            let lookup = try await env.busctl([
                "call", "org.berth.Berth1", ServicesWorld.root, ServicesWorld.services, "Lookup", "s", "gone",
            ])
            #expect(lookup.status != 0 && lookup.stderr.contains("no service"), "\(lookup)")
            let auto = try await env.busctl([
                "get-property", "org.berth.Berth1", ServicesWorld.root, ServicesWorld.services, "Autolaunch",
            ])
            #expect(auto.stdout == "as 3 \"a\" \"b\" \"c\"\n", "\(auto)")
        }
    }

    @Test func definedServicesPersistAcrossRestartAndRemove() async throws {
        try await TestEnvironment.with { env in
            var world = try await ServicesWorld.start(env)
            let added = try await world.client.signals(path: "/org/berth/Berth1", member: "InterfacesAdded")
            try await world.define("late", "exec: [sleep, \"300\"]\ndescription: defined at run time\n")
            var iterator = added.makeAsyncIterator()
            let signal = try #require(await iterator.next())
            #expect(signal.arguments.first == .objectPath("/org/berth/Berth1/services/late"))
            #expect(try await world.property("late", "Description") == .string("defined at run time"))
            #expect(try await world.job("Start", "late") == "done")
            world.daemon.signal(SIGTERM)
            _ = try await world.daemon.waitForExit()
            world = try await ServicesWorld.start(env)
            #expect(try await world.property("late", "Description") == .string("defined at run time"))
            let spec = env.root + "/spec.yaml"
            try FileSystem.writeAtomically(spec, text: "exec: sleep 299\n")
            let redefine = try await env.berthctl(["services", "define", "late", spec])
            #expect(redefine.status == 0, "\(redefine)")

            // Locked by this client: another one cannot remove it (Busy, naming the owner); the owner can.
            _ = try await world.client.call("org.berth.Berth1", world.path("late"), ServicesWorld.service, "Lock")
            let owner = try await world.property("late", "LockedBy").string ?? ""
            let notOwner = try await env.berthctl(["--verbose", "services", "remove", "late"])
            #expect(notOwner.status != 0 && notOwner.stderr.contains("Busy"), "\(notOwner)")
            #expect(notOwner.stderr.contains(owner), "the error names the lock's owner: \(notOwner)")
            #expect(try await world.call("List", []).first?.items?.count == 1, "still defined after the refusal")
            let removedSignals = try await world.client.signals(path: "/org/berth/Berth1", member: "InterfacesRemoved")
            _ = try await world.call("Remove", [.string("late")])
            var removedIterator = removedSignals.makeAsyncIterator()
            let removedSignal = try #require(await removedIterator.next())
            #expect(removedSignal.arguments.first == .objectPath("/org/berth/Berth1/services/late"))
            let gone = try await env.busctl(["introspect", "org.berth.Berth1", "/org/berth/Berth1/services/late"])
            #expect(!gone.stdout.contains("org.berth.Berth1.Service"), "\(gone)")
            let list = try await world.call("List", [])
            #expect(list.first?.items?.isEmpty == true)
            #expect(!FileManager.default.fileExists(atPath: env.stateHome + "/berth/services/defined/late.yaml"))
        }
    }

    @Test(
        .serialized,
        arguments: [
            ("exec: []", "the command is empty"),
            ("exec: [/nonexistent/python9]", "\"/nonexistent/python9\" does not exist"),
            ("exec: [no-such-program-here]", "\"no-such-program-here\" is not found in PATH"),
            ("exec: [sleep, \"1\"]\nstop_timeout: -5s", "is negative"),
            ("exec: [sleep, \"1\"]\nstart_limit_burst: 0", "not between 1 and"),
            ("exec: [sleep, \"1\"]\nrestrat: always", "unknown key \"restrat\""),
            ("exec: [sleep, \"1\"]\nready: tcp:0", "is not immediate, notify or tcp:PORT"),
        ])
    func badSpecsAreRefusedWithClearErrors(spec: String, expected: String) async throws {
        try await TestEnvironment.with { env in
            _ = try await ServicesWorld.start(env)
            let r = try await env.busctl([
                "call", "org.berth.Berth1", ServicesWorld.root, ServicesWorld.services, "Define", "ss", "bad", spec,
            ])
            #expect(r.status != 0 && r.stderr.contains(expected), "\(r)")
            #expect(r.stderr.contains("Define(\"bad\")"), "the error names the source: \(r)")
        }
    }

    @Test func badConfigFileNamesFileKeyAndLine() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libServicesPlugin.so"])
            try env.writeConfig("services:\n  autolaunch: [ghost]\n  units:\n    real: { exec: [sleep, \"1\"] }\n")
            let check = try await env.run([
                TestEnvironment.buildDir + "/berthd", "--check-config", "--plugin-dir", env.pluginDir,
            ])
            let text = check.stdout + check.stderr
            #expect(
                text.contains("berth.yaml:2") && text.contains("services.autolaunch") && text.contains("\"ghost\""),
                "\(check)")
        }
    }

    @Test func importAndExportConfig() async throws {
        try await TestEnvironment.with { env in
            let world = try await ServicesWorld.start(
                env, config: "services:\n  units:\n    one: { exec: [sleep, \"300\"] }\n")
            let file = env.root + "/import.yaml"
            try FileSystem.writeAtomically(
                file, text: "services:\n  autolaunch: [two]\n  units:\n    two: { exec: [sleep, \"301\"] }\n")
            let plan = try await world.client.call(
                "org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager",
                "ImportConfig", [.string(file), .bool(false), .bool(false)])
            #expect(plan.first?.description.contains("\"service\", \"two\", \"create\"") == true, "\(plan)")
            try await world.waitForState("two", "active")
            let export = try await world.client.call(
                "org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager", "ExportConfig")
            let yaml = export.first?.string ?? ""
            #expect(yaml.contains("one:") && yaml.contains("two:"), "\(yaml)")
        }
    }
}
