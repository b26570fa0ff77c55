import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// berthctl as a user runs it: listings, --json, errors on stderr with a non-zero exit, monitor.
@Suite struct BerthctlTests {
    @Test func statusPluginsAndJobs() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libTestFixtureGood.so", "libTestFixtureBadABI.so"])
            let daemon = try await env.startDaemon()
            let status = try await env.berthctl(["status"])
            #expect(status.status == 0, "\(status)")
            #expect(status.stdout.contains("berthd \(BerthVersion.string) (pid \(daemon.pid)) running on the session bus"))
            #expect(status.stdout.contains("plugins: 1 active of 2"))
            #expect(status.stdout.contains("testfixturebadabi  failed: plugin file"))
            let json = try await env.berthctl(["--json", "plugins"])
            #expect(json.stdout.contains("{\"id\":\"fixture\",\"version\":\"1.0.0\",\"state\":\"active\""), "\(json)")
            let table = try await env.berthctl(["plugins"])
            #expect(table.stdout.hasPrefix("ID                 VERSION  STATE   ERROR\n"), "\(table)")
            let client = try env.connect()
            let job = try await client.call("org.berth.Berth1", "/org/berth/Berth1/fixture", "org.berth.Berth1.Fixture", "Sleep",
                [.double(30)])
            let jobs = try await env.berthctl(["jobs", "--json"])
            #expect(jobs.stdout == "[{\"id\":\(job[0].uint32!),\"plugin\":\"fixture\",\"operation\":\"sleep\",\"path\":\"\(job[1].string!)\"}]\n", "\(jobs)")
        }
    }

    @Test func errorsAreOneLineOnStderr() async throws {
        try await TestEnvironment.with { env in
            let none = try await env.berthctl(["status"])
            #expect(none.status == 1)
            #expect(none.stderr == "berthctl: berthd is not running on the session bus (start it with `berthctl up`)\n", "\(none)")
            let verbose = try await env.berthctl(["status", "--verbose"])
            #expect(verbose.stderr.contains("[org.freedesktop.DBus.Error.ServiceUnknown]"))
            let noBus = try await env.berthctl(["status", "--address", "unix:path=/nonexistent/bus"])
            #expect(noBus.status == 1 && noBus.stderr.hasPrefix("berthctl: cannot connect to the bus at unix:path=/nonexistent/bus"),
                "\(noBus)")
        }
    }

    @Test func monitorPrintsSignalsAsTheyArrive() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libTestFixtureGood.so"])
            try await env.startDaemon()
            let out = env.root + "/monitor.out"
            let monitor = try ChildProcess.spawn([TestEnvironment.buildDir + "/berthctl", "monitor"], environment: env.environment,
                stdout: out, stderr: out)
            defer { monitor.terminate() }
            let client = try env.connect()
            // The monitor subscribes asynchronously: poke until a line arrives.
            try await waitUntil("berthctl monitor prints a PropertiesChanged line") {
                _ = try await client.call("org.berth.Berth1", "/org/berth/Berth1/fixture", "org.berth.Berth1.Fixture",
                    "SetCounter", [.uint32(UInt32.random(in: 1...1000))])
                return ((try? FileSystem.readText(out)) ?? "").contains("/org/berth/Berth1/fixture org.freedesktop.DBus.Properties.PropertiesChanged")
            }
            _ = try await client.call("org.berth.Berth1", "/org/berth/Berth1/fixture", "org.berth.Berth1.Fixture", "Sleep",
                [.double(0)])
            try await waitUntil("berthctl monitor prints JobRemoved") {
                ((try? FileSystem.readText(out)) ?? "").contains("org.berth.Berth1.Manager.JobRemoved")
            }
        }
    }
}
