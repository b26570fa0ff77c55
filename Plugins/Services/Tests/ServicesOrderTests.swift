import BerthKit
import BerthTestSupport
import Foundation
import Testing

@testable import ServicesPlugin

/// Start order: `after:` and `requires:` gated on readiness, reverse stop, cycles and unknown names refused with
/// file, line and key, and what waits on what in `berthctl services list`.
@Suite struct ServicesOrderTests {
    /// A PyroLab name server: ready (sd_notify) only after a while, leaving a file when it is.
    static func nameServer(_ env: TestEnvironment, delay: String = "0.4") throws -> String {
        try writeScript(
            env, "ns.sh",
            """
            #!/bin/sh
            trap 'date +%s%N > \(env.root)/ns.stopped; exit 0' TERM
            sleep \(delay)
            touch \(env.root)/ns.ready
            systemd-notify --ready
            sleep 300 & wait
            """)
    }

    /// An instrument daemon that must find the name server ready when it starts.
    static func laser(_ env: TestEnvironment) throws -> String {
        try writeScript(
            env, "laser.sh",
            """
            #!/bin/sh
            trap 'date +%s%N > \(env.root)/laser.stopped; exit 0' TERM
            if [ -e \(env.root)/ns.ready ]; then echo registered > \(env.root)/laser.saw; else echo "Failed to locate the nameserver" > \(env.root)/laser.saw; fi
            sleep 300 & wait
            """)
    }

    /// What the laser found when it started (it is ready at spawn, so the file may come a moment later).
    static func saw(_ env: TestEnvironment) async throws -> String {
        let path = env.root + "/laser.saw"
        try await waitUntil("the laser wrote what it found") {
            ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").hasSuffix("\n")
        }
        return try String(contentsOfFile: path, encoding: .utf8)
    }

    @Test(arguments: ["after", "requires"])
    func autolaunchStartsADependentOnlyOnceWhatItWaitsForIsReady(key: String) async throws {
        try await TestEnvironment.with { env in
            let (ns, laser) = (try Self.nameServer(env), try Self.laser(env))
            // The dependent is listed first: without ordering it starts at once and finds no name server.
            let world = try await ServicesWorld.start(
                env,
                config: """
                    services:
                      autolaunch: [laser, nameserver]
                      units:
                        nameserver: { exec: [\(ns)], ready: notify }
                        laser: { exec: [\(laser)], \(key): [nameserver] }
                    """)
            try await world.waitForState("nameserver", "active")
            try await world.waitForState("laser", "active")
            #expect(try await Self.saw(env) == "registered\n")
            #expect(try await world.property("laser", key == "after" ? "After" : "Requires").stringArray == ["nameserver"])
        }
    }

    @Test func startOfADependentStartsItsRequirementFirstAndStopGoesInReverse() async throws {
        try await TestEnvironment.with { env in
            let (ns, laser) = (try Self.nameServer(env), try Self.laser(env))
            let world = try await ServicesWorld.start(
                env,
                config: """
                    services:
                      units:
                        nameserver: { exec: [\(ns)], ready: notify }
                        laser: { exec: [\(laser)], requires: nameserver }
                    """)
            // Start of the dependent alone: the requirement comes up first, and the job ends when both are ready.
            #expect(try await world.job("Start", "laser") == "done")
            #expect(try await world.state("nameserver") == "active")
            #expect(try await Self.saw(env) == "registered\n")
            // Stopping the requirement stops the dependent first.
            #expect(try await world.job("Stop", "nameserver") == "done")
            #expect(try await world.state("laser") == "inactive")
            let laserStopped = try String(contentsOfFile: env.root + "/laser.stopped", encoding: .utf8)
            let nsStopped = try String(contentsOfFile: env.root + "/ns.stopped", encoding: .utf8)
            #expect(
                UInt64(laserStopped.filter(\.isNumber))! < UInt64(nsStopped.filter(\.isNumber))!,
                "laser stopped at \(laserStopped), the name server at \(nsStopped)")
        }
    }

    @Test func redefiningARunningRequirementRestartsItsDependentsAfterIt() async throws {
        try await TestEnvironment.with { env in
            let (ns, laser) = (try Self.nameServer(env, delay: "0.1"), try Self.laser(env))
            let world = try await ServicesWorld.start(env)
            try await world.define("nameserver", "exec: [\(ns)]\nready: notify\n")
            try await world.define("laser", "exec: [\(laser)]\nrequires: nameserver\n")
            #expect(try await world.job("Start", "laser") == "done")
            let (laserPID, nsPID) = (try await world.mainPID("laser"), try await world.mainPID("nameserver"))
            try await world.define("nameserver", "exec: [\(ns)]\nready: notify\ndescription: v2\n")
            try await waitUntil("both run again, the name server with its new definition") {
                let pids = (try await world.mainPID("laser"), try await world.mainPID("nameserver"))
                return try await world.state("laser") == "active" && pids.0 != laserPID && pids.0 != 0
                    && pids.1 != nsPID && pids.1 != 0
            }
            // The laser stopped before the name server did, and found it ready when it came back.
            let laserStopped = try String(contentsOfFile: env.root + "/laser.stopped", encoding: .utf8)
            let nsStopped = try String(contentsOfFile: env.root + "/ns.stopped", encoding: .utf8)
            #expect(UInt64(laserStopped.filter(\.isNumber))! < UInt64(nsStopped.filter(\.isNumber))!)
            #expect(try await Self.saw(env) == "registered\n")
        }
    }

    @Test func aFailedRequirementKeepsTheDependentDownAndACrashStopsIt() async throws {
        try await TestEnvironment.with { env in
            let laser = try Self.laser(env)
            let crashy = try writeScript(
                env, "db.sh", "#!/bin/sh\n[ -e \(env.root)/db.ok ] || exit 3\nsystemd-notify --ready\nexec sleep 300\n")
            let world = try await ServicesWorld.start(
                env,
                config: """
                    services:
                      units:
                        db: { exec: [\(crashy)], ready: notify, restart: "no" }
                        laser: { exec: [\(laser)], requires: [db] }
                    """)
            #expect(try await world.job("Start", "laser") == "failed")
            #expect(try await world.state("laser") == "inactive")
            #expect(!FileManager.default.fileExists(atPath: env.root + "/laser.saw"), "laser was spawned")
            // With the requirement healthy both run; when it dies, the dependent stops.
            _ = FileManager.default.createFile(atPath: env.root + "/db.ok", contents: nil)
            #expect(try await world.job("Start", "laser") == "done")
            let db = try await world.mainPID("db")
            kill(db, SIGKILL)
            try await world.waitForState("laser", "inactive")
        }
    }

    @Test func berthctlListShowsWhatWaitsOnWhat() async throws {
        try await TestEnvironment.with { env in
            let ns = try Self.nameServer(env, delay: "300")
            let world = try await ServicesWorld.start(
                env,
                config: """
                    services:
                      units:
                        nameserver: { exec: [\(ns)], ready: notify }
                        laser: { exec: [sleep, "300"], after: [nameserver] }
                    """)
            _ = try await world.call("Start", [.string("nameserver")])
            _ = try await world.call("Start", [.string("laser")])
            try await waitUntil("laser waits for the name server") {
                try await world.property("laser", "WaitingFor").stringArray == ["nameserver"]
            }
            let list = try await env.berthctl(["services", "list"])
            #expect(list.status == 0, "\(list)")
            let line = list.stdout.split(separator: "\n").first { $0.hasPrefix("laser") }.map(String.init) ?? ""
            #expect(line.contains("waiting for nameserver"), "\(list.stdout)")
            let json = try await env.berthctl(["services", "list", "--json"])
            #expect(json.stdout.contains("\"after\":[\"nameserver\"]"), "\(json.stdout)")
            #expect(json.stdout.contains("\"waiting_for\":[\"nameserver\"]"), "\(json.stdout)")
        }
    }

    @Test func importStartsInOrderWhateverTheFileOrderAndExportKeepsTheOrder() async throws {
        try await TestEnvironment.with { env in
            let (ns, laser) = (try Self.nameServer(env), try Self.laser(env))
            let world = try await ServicesWorld.start(env)
            let file = env.root + "/import.yaml"
            // The dependent comes first in the file and is the only autolaunch entry.
            try FileSystem.writeAtomically(
                file,
                text: """
                    services:
                      autolaunch: [laser]
                      units:
                        laser: { exec: [\(laser)], requires: [nameserver] }
                        nameserver: { exec: [\(ns)], ready: notify }
                    """)
            _ = try await world.client.call(
                "org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager", "ImportConfig",
                [.string(file), .bool(false), .bool(false)])
            try await world.waitForState("laser", "active")
            #expect(try await world.state("nameserver") == "active")
            #expect(try await Self.saw(env) == "registered\n")
            let export = try await world.client.call(
                "org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager", "ExportConfig")
            #expect(export.first?.string?.contains("requires:") == true, "\(export)")
            // An import that would close a cycle changes nothing.
            try FileSystem.writeAtomically(
                file, text: "services:\n  units:\n    nameserver: { exec: [\(ns)], after: [laser] }\n")
            let refused = try await env.busctl([
                "call", "org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager", "ImportConfig", "sbb",
                file, "false", "false",
            ])
            #expect(refused.status != 0 && refused.stderr.contains("is a cycle"), "\(refused)")
        }
    }

    @Test func cyclesAndUnknownNamesAreInvalidConfigWithFileLineAndKey() throws {
        func validate(_ yaml: String) throws {
            let node = try YAMLParser.parse(yaml, file: "/etc/berth/berth.yaml")?["services"]
            try ServicesPlugin().validate(config: node)
        }
        let cycle = #expect(throws: BerthError.self) {
            try validate(
                """
                services:
                  units:
                    a: { exec: [sleep, "1"], after: [c] }
                    b: { exec: [sleep, "1"], requires: [a] }
                    c: { exec: [sleep, "1"], after: b }
                """)
        }
        #expect(cycle?.code == .invalidConfig)
        #expect(
            cycle?.message.hasPrefix("/etc/berth/berth.yaml:4: services.units.b.requires: \"b\" -> \"a\" -> \"c\" -> \"b\" is a cycle")
                == true, "\(String(describing: cycle))")
        let unknown = #expect(throws: BerthError.self) {
            try validate("services:\n  units:\n    a: { exec: [sleep, \"1\"] }\n    b:\n      exec: [sleep, \"1\"]\n      requires: [a, ghost]\n")
        }
        #expect(
            unknown?.message.hasPrefix("/etc/berth/berth.yaml:6: services.units.b.requires: \"ghost\" is not a defined service")
                == true, "\(String(describing: unknown))")
        let itself = #expect(throws: BerthError.self) {
            try validate("services:\n  units:\n    a: { exec: [sleep, \"1\"], after: a }\n")
        }
        #expect(itself?.message.contains("services.units.a.after: service \"a\" cannot wait for itself") == true)
    }

    @Test func defineThatClosesACycleIsRefusedAndChangesNothing() async throws {
        try await TestEnvironment.with { env in
            let world = try await ServicesWorld.start(
                env, config: "services:\n  units:\n    a: { exec: [sleep, \"300\"], after: [b] }\n    b: { exec: [sleep, \"300\"] }\n")
            let r = try await env.busctl([
                "call", "org.berth.Berth1", ServicesWorld.root, ServicesWorld.services, "Define", "ss", "b",
                "exec: [sleep, \"300\"]\nrequires: [a]\n",
            ])
            #expect(r.status != 0 && r.stderr.contains("line 2: b.requires: \"b\" -> \"a\" -> \"b\" is a cycle"), "\(r)")
            _ = world
            #expect(!FileManager.default.fileExists(atPath: env.stateHome + "/berth/services/defined/b.yaml"))
        }
    }
}

extension DBusValue {
    var stringArray: [String]? { items?.compactMap(\.string) }
}
