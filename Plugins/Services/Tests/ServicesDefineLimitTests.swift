import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// Define's spec goes through the same limits as a config file: an alias bomb under the node limit is refused,
/// naming the argument and the line, before anything is stored or started; and an error's location says `line N`
/// rather than gluing the line to the sender's unique name.
@Suite struct ServicesDefineLimitTests {
    /// The daemon's peak resident memory in KiB (VmHWM).
    static func peakKiB(_ pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
    }

    @Test func anAliasBombIsRefusedNamingTheArgumentAndTheLine() async throws {
        try await TestEnvironment.with { env in
            let world = try await ServicesWorld.start(env)
            // 1 MiB aliased 10,000 times: 10,000 nodes, and 10 GiB of environment for Start to build.
            let spec =
                "exec: [sleep, \"60\"]\ndescription: &s \"" + String(repeating: "x", count: 1 << 20) + "\"\nenv: {"
                + (0..<10_000).map { "V\($0): *s" }.joined(separator: ", ") + "}\n"
            do {
                try await world.define("y", spec)
                // Starting it now would take the machine's memory: stop here.
                Issue.record("Define accepted an alias bomb")
                return
            } catch let error as DBusError {
                #expect(error.name == "org.berth.Berth1.Error.InvalidConfig", "\(error)")
                #expect(
                    error.message.hasPrefix("Define(\"y\") by :1.")
                        && error.message.contains(
                            ", line 3: the document grows past 4194304 bytes (4 MiB) of text once its aliases are expanded"
                        ),
                    "\(error.message)")
            }
            let start = try await env.busctl([
                "call", ServicesWorld.name, ServicesWorld.root, ServicesWorld.services, "Start", "s", "y",
            ])
            #expect(start.status != 0 && start.stderr.contains("y"), "\(start)")
            #expect(
                Self.peakKiB(world.daemon.pid) < 200 << 10, "berthd peaked at \(Self.peakKiB(world.daemon.pid)) KiB")
        }
    }

    @Test func aDefineErrorSaysLineNotAColonAfterTheSender() async throws {
        try await TestEnvironment.with { env in
            _ = try await ServicesWorld.start(env)
            let r = try await env.busctl([
                "call", ServicesWorld.name, ServicesWorld.root, ServicesWorld.services, "Define", "ss", "x",
                "exec: [sleep, \"1\"]\nbogus: 1\n",
            ])
            #expect(r.status != 0, "\(r)")
            // `Define("x") by :1.52, line 2: x.bogus: unknown key "bogus" (...)`, not `... by :1.52:2: ...`.
            let pattern = #/Define\("x"\) by :1\.[0-9]+, line 2: x\.bogus: unknown key "bogus"/#
            #expect(r.stderr.contains(pattern), "\(r)")
        }
    }
}
