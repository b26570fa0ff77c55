import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// Real processes supervised through berthd, driven by busctl, gdbus, berthctl and a BerthKit client.
@Suite struct ServicesLifecycleTests {
    @Test func startStopThroughBusctlAndBerthctl() async throws {
        try await TestEnvironment.with { env in
            let world = try await ServicesWorld.start(
                env,
                config: """
                    services:
                      units:
                        sleeper: { exec: [sleep, "300"], description: "a sleeper", endpoint: "PYRO:sleeper@localhost:9090" }
                    """)
            let start = try await env.busctl([
                "call", "org.berth.Berth1", ServicesWorld.root, ServicesWorld.services, "Start", "s", "sleeper",
            ])
            #expect(start.status == 0 && start.stdout.hasPrefix("uo "), "\(start)")
            try await world.waitForState("sleeper", "active")
            let pid = try await world.mainPID("sleeper")
            #expect(pid > 0 && processGroupMembers(pid) == [pid])
            let lookup = try await env.gdbus([
                "call", "@BUS", "--dest", "org.berth.Berth1", "--object-path", ServicesWorld.root,
                "--method", "org.berth.Berth1.Services.Lookup", "sleeper",
            ])
            #expect(
                lookup.stdout.contains("'/org/berth/Berth1/services/sleeper', 'PYRO:sleeper@localhost:9090'"),
                "\(lookup)")
            let list = try await env.berthctl(["services", "list"])
            #expect(list.status == 0 && list.stdout.contains("sleeper") && list.stdout.contains("\(pid)"), "\(list)")
            let stop = try await env.berthctl(["services", "stop", "sleeper"])
            #expect(stop.status == 0 && stop.stdout.contains("done"), "\(stop)")
            #expect(try await world.state("sleeper") == "inactive")
            #expect(processGroupMembers(pid).isEmpty)
            let missing = try await env.busctl([
                "call", "org.berth.Berth1", ServicesWorld.root, ServicesWorld.services, "Lookup", "s", "nope",
            ])
            #expect(missing.status != 0 && missing.stderr.contains("there is no service \"nope\""), "\(missing)")
            let missingCtl = try await env.berthctl(["--verbose", "services", "start", "nope"])
            #expect(missingCtl.status != 0 && missingCtl.stderr.contains("NotFound"), "\(missingCtl)")
        }
    }

    @Test func crashLoopEndsFailedAfterStartLimitWithGrowingBackoff() async throws {
        try await TestEnvironment.with { env in
            let stamps = env.root + "/starts"
            let script = try writeScript(env, "crash.sh", "#!/bin/sh\ndate +%s%N >> \(stamps)\nexit 3\n")
            let world = try await ServicesWorld.start(
                env,
                config: """
                    services:
                      autolaunch: [crasher]
                      units:
                        crasher: { exec: [\(script)], restart: always, restart_delay: 300ms, restart_delay_max: 5s,
                                   start_limit_burst: 4, start_limit_interval: 30s }
                    """)
            try await world.waitForState("crasher", "failed", timeout: .seconds(20))
            let starts = try String(contentsOfFile: stamps, encoding: .utf8).split(separator: "\n").compactMap {
                Int64($0)
            }
            #expect(starts.count == 4, "\(starts)")
            let gaps = zip(starts.dropFirst(), starts).map { $0 - $1 }
            // At least 300, 600, 1200 ms: each delay about twice the one before.
            for (gap, delay) in zip(gaps, [300_000_000, 600_000_000, 1_200_000_000] as [Int64]) {
                #expect(gap >= delay, "gaps \(gaps)")
            }
            // The lower bounds prove the doubling (a fixed delay would fail the 1.2 s one); the first gap stays below it.
            #expect(gaps.count == 3 && gaps[0] < gaps[2], "gaps \(gaps)")
            #expect(try await world.property("crasher", "ExitStatus") == .int32(3))
            #expect(try await world.property("crasher", "Result").string == "start-limit-hit")
            // Failed stays failed until started by hand, which resets the limit and spawns it again.
            #expect(try await world.job("Start", "crasher") == "done")
            // At least five: with `restart: always` it crashes on and restarts 300 ms later, so a poll delayed that
            // long under load sees six (the exact count of four is checked above, where the limit stops it).
            try await waitUntil("a fifth start") {
                ((try? String(contentsOfFile: stamps, encoding: .utf8)) ?? "").split(separator: "\n").count >= 5
            }
        }
    }

    @Test func forkingServiceLeavesNoOrphanAndSigtermIgnorerIsKilled() async throws {
        try await TestEnvironment.with { env in
            let forker = try writeScript(env, "fork.sh", "#!/bin/sh\nsleep 300 &\nsleep 301 &\n(sleep 302 &)\nwait\n")
            let world = try await ServicesWorld.start(
                env,
                config: """
                    services:
                      autolaunch: [forker, stubborn]
                      units:
                        forker: { exec: [\(forker)] }
                        stubborn:
                          exec: [python3, -c, "import signal, time\\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\\nprint('up', flush=True)\\ntime.sleep(300)"]
                          stop_timeout: 300ms
                    """)
            try await world.waitForState("forker", "active")
            try await world.waitForState("stubborn", "active")
            let pgid = try await world.mainPID("forker")
            try await waitUntil("the forker's children run") { processGroupMembers(pgid).count >= 4 }
            #expect(try await world.job("Stop", "forker") == "done")
            #expect(processGroupMembers(pgid).isEmpty, "left: \(processGroupMembers(pgid))")

            let stubborn = try await world.mainPID("stubborn")
            try await waitUntil("python ignores SIGTERM") {
                let status = (try? String(contentsOfFile: "/proc/\(stubborn)/status", encoding: .utf8)) ?? ""
                let line = status.split(separator: "\n").first { $0.hasPrefix("SigIgn:") } ?? ""
                let mask = UInt64(line.dropFirst(7).trimmingCharacters(in: .whitespaces), radix: 16) ?? 0
                return mask & (1 << (UInt64(SIGTERM) - 1)) != 0
            }
            let began = ContinuousClock.now
            #expect(try await world.job("Stop", "stubborn") == "done")
            #expect(ContinuousClock.now - began >= .milliseconds(300))
            #expect(processGroupMembers(stubborn).isEmpty)
            #expect(try await world.property("stubborn", "ExitStatus") == .int32(-9))
        }
    }

    @Test func notifyReadinessAndEndpointThroughSystemdNotifyAndPython() async throws {
        try await TestEnvironment.with { env in
            let viaTool = try writeScript(
                env, "notify.sh",
                """
                #!/bin/sh
                systemd-notify --ready --status="serving" "X_BERTH_ENDPOINT=PYRO:tool@127.0.0.1:5001"
                exec sleep 300
                """)
            let world = try await ServicesWorld.start(
                env,
                config: """
                    services:
                      units:
                        tool: { exec: [\(viaTool)], ready: notify, start_timeout: 10s }
                        py:
                          ready: notify
                          exec: [python3, -c, "import os, socket, time\\ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\\ntime.sleep(0.2)\\ns.sendto(b'READY=1\\\\nX_BERTH_ENDPOINT=PYRO:py@127.0.0.1:5002', os.environ['NOTIFY_SOCKET'])\\ntime.sleep(300)"]
                        never: { exec: [sleep, "300"], ready: notify, start_timeout: 300ms }
                    """)
            #expect(try await world.job("Start", "py") == "done")
            #expect(try await world.state("py") == "active")
            let lookup = try await world.call("Lookup", [.string("py")])
            #expect(lookup[1] == .string("PYRO:py@127.0.0.1:5002"))
            #expect(try await world.job("Start", "tool") == "done")
            #expect(try await world.property("tool", "Endpoint") == .string("PYRO:tool@127.0.0.1:5001"))
            // Not ready in time: stopped, the job fails and no process is left.
            #expect(try await world.job("Start", "never") == "failed")
            #expect(try await world.state("never") != "active")
            let ctl = try await env.berthctl(["services", "lookup", "tool"])
            #expect(ctl.stdout == "/org/berth/Berth1/services/tool PYRO:tool@127.0.0.1:5001\n", "\(ctl)")
        }
    }
}
