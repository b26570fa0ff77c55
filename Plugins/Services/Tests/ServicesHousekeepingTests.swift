import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// The desired state survives a restart of berthd, Remove cleans up its logs, and a full disk is StorageFull.
@Suite struct ServicesHousekeepingTests {
    @Test func servicesStartedByHandComeBackAfterARestartAndStoppedOnesStayStopped() async throws {
        try await TestEnvironment.with { env in
            var world = try await ServicesWorld.start(
                env, config: "services:\n  units:\n    fromfile: { exec: [sleep, \"300\"] }\n")
            try await world.define("byhand", "exec: [sleep, \"301\"]\n")
            try await world.define("stopped", "exec: [sleep, \"302\"]\n")
            for name in ["byhand", "stopped", "fromfile"] { #expect(try await world.job("Start", name) == "done") }
            #expect(try await world.job("Stop", "stopped") == "done")
            for signal in [SIGTERM, SIGKILL] {
                world.daemon.signal(signal)
                _ = try await world.daemon.waitForExit()
                world = try await ServicesWorld.start(env)
                try await world.waitForState("byhand", "active")
                try await world.waitForState("fromfile", "active")
                #expect(try await world.state("stopped") == "inactive", "after signal \(signal)")
            }
            // Stopped by hand: not started at the next start.
            #expect(try await world.job("Stop", "byhand") == "done")
            world.daemon.signal(SIGTERM)
            _ = try await world.daemon.waitForExit()
            world = try await ServicesWorld.start(env)
            try await world.waitForState("fromfile", "active")
            #expect(try await world.state("byhand") == "inactive")
        }
    }

    @Test func removeDeletesTheLogsAndStaleLogsAgeOut() async throws {
        try await TestEnvironment.with { env in
            let logs = env.stateHome + "/berth/services/logs"
            try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
            // Left by services removed long ago (before Remove cleaned up), and a recent one.
            for file in ["ghost.log", "ghost.log.1", "recent.log"] {
                #expect(FileManager.default.createFile(atPath: logs + "/" + file, contents: Data("old\n".utf8)))
            }
            let old = Date(timeIntervalSinceNow: -8 * 86400)
            for file in ["ghost.log", "ghost.log.1"] {
                try FileManager.default.setAttributes([.modificationDate: old], ofItemAtPath: logs + "/" + file)
            }
            let world = try await ServicesWorld.start(env)
            try await waitUntil("stale logs are aged out") {
                !FileManager.default.fileExists(atPath: logs + "/ghost.log")
                    && !FileManager.default.fileExists(atPath: logs + "/ghost.log.1")
            }
            #expect(FileManager.default.fileExists(atPath: logs + "/recent.log"))
            for cycle in 1...20 {
                try await world.define("chatty", "exec: [sh, -c, 'echo hello \(cycle); exec sleep 300']\n")
                #expect(try await world.job("Start", "chatty") == "done")
                try await waitUntil("cycle \(cycle): the log holds the line") {
                    (try? String(contentsOfFile: logs + "/chatty.log", encoding: .utf8))?.contains("hello") == true
                }
                _ = try await world.call("Remove", [.string("chatty")])
                #expect(!FileManager.default.fileExists(atPath: logs + "/chatty.log"), "cycle \(cycle)")
            }
            let left = try FileManager.default.contentsOfDirectory(atPath: logs)
            #expect(left == ["recent.log"], "\(left)")
        }
    }

    @Test(.enabled(if: getuid() == 0, "mounting a small tmpfs needs root"))
    func defineOnAFullDiskIsStorageFull() async throws {
        try await TestEnvironment.with { env in
            let world = try await ServicesWorld.start(env)
            let defined = env.stateHome + "/berth/services/defined"
            let mount = try await env.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", defined])
            try #require(mount.status == 0, "\(mount)")
            defer { _ = try? Process.run(URL(fileURLWithPath: "/bin/umount"), arguments: ["-l", defined]).waitUntilExit() }
            // Fill it.
            let fill = try await env.run(["sh", "-c", "cat /dev/zero > \(defined)/fill; true"])
            #expect(fill.status == 0)
            do {
                try await world.define("big", "exec: [sleep, \"300\"]\ndescription: \"" + String(repeating: "y", count: 8192) + "\"\n")
                Issue.record("Define on a full disk succeeded")
            } catch let error as DBusError {
                #expect(error.name == "org.berth.Berth1.Error.StorageFull", "\(error)")
                #expect(error.message.contains("service \"big\" is not defined") && error.message.contains("No space left"), "\(error)")
            }
            #expect(try await world.call("List", []).first?.items?.isEmpty == true, "nothing was defined")
        }
    }
}
