import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// berthctl never waits for ever: a job's wait ends when the daemon leaves the bus, a stopped daemon is named
/// within 3 s, and the conventions users expect (negative numbers, reload, the private bus).
@Suite struct BerthctlWaitTests {
    /// berthd with a service that never becomes ready, and `berthctl services start` of it waiting on its job (the
    /// job runs when this returns): the daemon, the berthctl process and the file of its output.
    static func startWaitingOnASlowService(_ env: TestEnvironment) async throws
        -> (DaemonProcess, ChildProcess, String)
    {
        try env.installPlugins(["libServicesPlugin.so"])
        try env.writeConfig(
            """
            services:
              units:
                slow: { exec: [sleep, "300"], ready: notify, start_timeout: 120s }
            """)
        let daemon = try await env.startDaemon()
        let out = env.root + "/start.out"
        let start = try ChildProcess.spawn(
            [TestEnvironment.buildDir + "/berthctl", "services", "start", "slow"], environment: env.environment,
            stdout: out, stderr: out)
        do {
            let client = try env.connect()
            defer { client.close() }
            try await waitUntil("the Start job runs") {
                let jobs = try await client.getProperty(
                    "org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager", "Jobs")
                return !(jobs.items ?? []).isEmpty
            }
        } catch {
            start.terminate()
            throw error
        }
        return (daemon, start, out)
    }

    /// `berthctl services start SLOW` while berthd is killed and a new one takes the name: berthctl exits non-zero
    /// at once, saying the daemon left, instead of waiting for a JobRemoved that never comes.
    @Test func jobWaitEndsWhenTheDaemonIsReplaced() async throws {
        try await TestEnvironment.with { env in
            let (first, start, out) = try await Self.startWaitingOnASlowService(env)
            defer { start.terminate() }
            first.signal(SIGKILL)
            _ = try await first.waitForExit()
            // The new daemon numbers its jobs from 1 again: its JobRemoved must not end the old wait.
            try await env.startDaemon()
            let began = ContinuousClock.now
            let status = try await start.wait(timeout: .seconds(15))
            let text = (try? FileSystem.readText(out)) ?? ""
            #expect(status == 1, "\(text)")
            #expect(text.contains("berthd left the bus while job"), "\(text)")
            #expect(ContinuousClock.now - began < .seconds(10))
        }
    }

    /// The same when berthd dies and nothing takes its place.
    @Test func jobWaitEndsWhenTheDaemonDies() async throws {
        try await TestEnvironment.with { env in
            let (daemon, start, out) = try await Self.startWaitingOnASlowService(env)
            defer { start.terminate() }
            daemon.signal(SIGKILL)
            let status = try await start.wait(timeout: .seconds(10))
            let text = (try? FileSystem.readText(out)) ?? ""
            #expect(status == 1 && text.contains("berthd left the bus while job"), "\(text)")
        }
    }

    /// A SIGSTOPped daemon: `berthctl status` answers within 3 s with the pid from the lock file and `up --force`.
    @Test func statusNamesAStoppedDaemonQuickly() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libTestFixtureGood.so"])
            let daemon = try await env.startDaemon()
            daemon.signal(SIGSTOP)
            defer { daemon.signal(SIGCONT) }
            let began = ContinuousClock.now
            let status = try await env.berthctl(["status"], timeout: .seconds(20))
            let took = ContinuousClock.now - began
            #expect(status.status == 1, "\(status)")
            #expect(status.stderr.contains("berthd (pid \(daemon.pid)"), "\(status)")
            #expect(status.stderr.contains("does not answer") && status.stderr.contains("berthctl up --force"), "\(status)")
            #expect(took < .seconds(10), "status took \(took)")  // 2 s of Ping; before, the 25 s bus timeout
        }
    }

    /// Southern and western positions: negative numbers are values, not options.
    @Test func negativeCoordinatesAreValues() async throws {
        try await TestEnvironment.with { env in
            // No daemon: parsing must get as far as the bus (an argument error would exit 64 with a usage line).
            let result = try await env.berthctl(
                ["recorder", "deployment", "start", "--name", "cape", "--latitude", "-33.9", "--longitude", "-18.4"])
            #expect(!result.stderr.contains("Missing value"), "\(result)")
            #expect(result.stderr.contains("berthd is not running"), "\(result)")
        }
    }

    /// `berthctl reload` re-reads the configuration (a new service appears), like SIGHUP.
    @Test func reloadReadsTheConfigurationAgain() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libServicesPlugin.so"])
            try env.writeConfig("services:\n  units:\n    a: { exec: [sleep, \"300\"] }\n")
            try await env.startDaemon()
            try env.writeConfig(
                "services:\n  units:\n    a: { exec: [sleep, \"300\"] }\n    b: { exec: [sleep, \"300\"] }\n")
            let reload = try await env.berthctl(["reload"])
            #expect(reload.status == 0 && reload.stdout.contains("reloaded"), "\(reload)")
            let list = try await env.berthctl(["services", "list"])
            #expect(list.stdout.contains("b "), "\(list)")
        }
    }

    /// A mistyped command word is named with the command that was meant, exit 64; a far one is the parser's error.
    @Test func aMistypedCommandSuggestsTheNearest() async throws {
        try await TestEnvironment.with { env in
            let top = try await env.berthctl(["servces"])
            #expect(top.status == 64 && top.stderr.contains("did you mean `berthctl services`?"), "\(top)")
            let nested = try await env.berthctl(["services", "strat", "x"])
            #expect(nested.status == 64 && nested.stderr.contains("did you mean `berthctl services start`?"), "\(nested)")
            let far = try await env.berthctl(["zzzzzz"])
            #expect(far.status == 64 && !far.stderr.contains("did you mean"), "\(far)")
            let version = try await env.berthctl(["--version"])
            #expect(version.status == 0 && version.stdout == BerthVersion.string + "\n", "\(version)")
        }
    }
}
