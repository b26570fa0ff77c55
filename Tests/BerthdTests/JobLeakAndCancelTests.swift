import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// Finished jobs do not pile up in berthd's memory, and cancelling a Start job stops the service it was starting.
@Suite(.serialized) struct JobLeakAndCancelTests {
    static func rssKiB(_ pid: Int32) -> Int { procStatusKiB(pid, "VmRSS") ?? 0 }

    @Test(.timeLimit(.minutes(3))) func finishedJobsDoNotGrowTheDaemon() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libTestFixtureGood.so"])
            try env.writeConfig("job_retention: 100ms\n")
            let daemon = try await env.startDaemon()
            let client = try env.connect()
            defer { client.close() }
            func jobs(_ count: Int) async throws {
                for _ in 0..<count {
                    _ = try await client.call(
                        "org.berth.Berth1", "/org/berth/Berth1/fixture", "org.berth.Berth1.Fixture", "Sleep",
                        [.double(0)])
                }
                // Past the retention: every job has ended and left the bus.
                try await waitUntil("every job has ended", timeout: .seconds(20)) {
                    let jobs = try await client.getProperty(
                        "org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager", "Jobs")
                    if case .array(_, let paths) = jobs { return paths.isEmpty }
                    return false
                }
                try await Task.sleep(for: .milliseconds(600))
            }
            try await jobs(500)
            let warm = Self.rssKiB(daemon.pid)
            try await jobs(2000)
            let after = Self.rssKiB(daemon.pid)
            // Before the fix every finished job stayed (about 4.4 KiB each: 8.8 MB for 2000).
            #expect(warm > 0 && after - warm < 1536, "RSS \(warm) KiB after warm-up, \(after) KiB after 2000 more jobs")
        }
    }

    @Test(.timeLimit(.minutes(3))) func defineStartStopRemoveCyclesDoNotGrowTheDaemon() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libServicesPlugin.so"])
            try env.writeConfig("job_retention: 100ms\n")
            let daemon = try await env.startDaemon()
            let client = try env.connect()
            defer { client.close() }
            let root = "/org/berth/Berth1/services"
            let removed = try await client.signals(
                path: "/org/berth/Berth1", interface: "org.berth.Berth1.Manager", member: "JobRemoved")
            var iterator = removed.makeAsyncIterator()
            func call(_ member: String, _ arguments: [DBusValue]) async throws -> [DBusValue] {
                try await client.call("org.berth.Berth1", root, "org.berth.Berth1.Services", member, arguments)
            }
            func cycles(_ count: Int) async throws {
                for _ in 0..<count {
                    _ = try await call("Define", [.string("cycle"), .string("{ exec: [sleep, \"300\"] }")])
                    for member in ["Start", "Stop"] {
                        let job = try await call(member, [.string("cycle")])
                        while let signal = await iterator.next(), signal.arguments.first != job.first {}
                    }
                    _ = try await call("Remove", [.string("cycle")])
                }
                try await Task.sleep(for: .milliseconds(800))  // past the retention
            }
            try await cycles(100)
            let warm = Self.rssKiB(daemon.pid)
            try await cycles(400)
            let after = Self.rssKiB(daemon.pid)
            // Before the fix each cycle kept about 11 KiB (4.4 MB for 400).
            #expect(
                warm > 0 && after - warm < 1536, "RSS \(warm) KiB after warm-up, \(after) KiB after 400 more cycles")
        }
    }

    @Test(.timeLimit(.minutes(2))) func cancellingAStartJobStopsTheService() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libServicesPlugin.so"])
            let daemon = try await env.startDaemon()
            _ = daemon
            let client = try env.connect()
            defer { client.close() }
            let root = "/org/berth/Berth1/services"
            // Never ready: nothing listens on the port (bound here and not listened on, so nobody else takes it).
            let (blocker, port) = boundLoopbackSocket()
            defer { close(blocker) }
            _ = try await client.call(
                "org.berth.Berth1", root, "org.berth.Berth1.Services", "Define",
                [.string("slow"), .string("{ exec: [sleep, \"300\"], ready: \"tcp:\(port)\", start_timeout: 120s }")])
            let removed = try await client.signals(
                path: "/org/berth/Berth1", interface: "org.berth.Berth1.Manager", member: "JobRemoved")
            let reply = try await client.call(
                "org.berth.Berth1", root, "org.berth.Berth1.Services", "Start", [.string("slow")])
            let path = BusPath.encode(root, "slow")
            func property(_ name: String) async throws -> DBusValue {
                try await client.getProperty("org.berth.Berth1", path, "org.berth.Berth1.Service", name)
            }
            try await waitUntil("the service is activating with a pid") {
                let state = try await property("State")
                let pid = try await property("MainPID").uint32 ?? 0
                return state == .string("activating") && pid > 0
            }
            let pid = Int32(try await property("MainPID").uint32 ?? 0)
            _ = try await client.call("org.berth.Berth1", reply[1].string!, "org.berth.Berth1.Job", "Cancel")
            var result = ""
            for await signal in removed where signal.arguments.first == reply[0] {
                result = signal.arguments[3].string ?? ""
                break
            }
            #expect(result == "canceled")
            // When the job has ended the work has stopped: the service is down and its process gone.
            let state = try await property("State").string ?? ""
            #expect(state == "inactive", "service state \(state) after its Start job was canceled")
            #expect(kill(pid, 0) != 0 && errno == ESRCH, "pid \(pid) still runs after its Start job was canceled")
            // It does not come up later either.
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await property("State") == .string("inactive"))
        }
    }
    @Test(.timeLimit(.minutes(2))) func cancellingADeployJobDestroysTheNewInstance() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libInstancesPlugin.so"])
            let base = 20000 + Int.random(in: 0..<120) * 100
            try env.writeConfig("instances:\n  ports: \(base)-\(base + 99)\n  stop_timeout: 2s\n")
            try await env.startDaemon()
            let client = try env.connect()
            defer { client.close() }
            let root = "/org/berth/Berth1/instances"
            // An app that runs but never answers its health check.
            let source = env.root + "/app"
            try FileSystem.makeDirectories(source, mode: 0o755)
            try FileSystem.writeAtomically(source + "/server", text: "#!/bin/sh\nexec sleep 300\n", mode: 0o755)
            let removed = try await client.signals(
                path: "/org/berth/Berth1", interface: "org.berth.Berth1.Manager", member: "JobRemoved")
            let reply = try await client.call(
                "org.berth.Berth1", root, "org.berth.Berth1.Instances", "Deploy",
                [
                    .string("web"), .string(source),
                    .vardict([("health", .string("http:/healthz")), ("timeout", .string("60s"))]),
                ])
            func instances() async throws -> [DBusValue] {
                let list = try await client.call("org.berth.Berth1", root, "org.berth.Berth1.Instances", "List")
                if case .array(_, let items) = list.first { return items }
                return []
            }
            // Wait until the new instance runs (its pid is known), then cancel the deploy.
            var pid: UInt32 = 0
            try await waitUntil("the new instance runs", timeout: .seconds(20)) {
                guard case .structure(let fields)? = try await instances().first, fields.count == 4,
                    let path = fields[3].string
                else { return false }
                // Listed a moment before its object is exported: an unknown object is "not yet".
                pid = (try? await client.getProperty("org.berth.Berth1", path, "org.berth.Berth1.Instance", "MainPID"))?
                    .uint32 ?? 0
                return pid > 0
            }
            _ = try await client.call("org.berth.Berth1", reply[1].string!, "org.berth.Berth1.Job", "Cancel")
            var result = ""
            for await signal in removed where signal.arguments.first == reply[0] {
                result = signal.arguments[3].string ?? ""
                break
            }
            #expect(result == "canceled")
            // When the job has ended the work has stopped: the new instance is destroyed and its process gone.
            #expect(try await instances().isEmpty)
            #expect(kill(Int32(pid), 0) != 0 && errno == ESRCH, "pid \(pid) still runs after its deploy was canceled")
        }
    }
}
