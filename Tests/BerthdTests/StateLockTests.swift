import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// One berthd per state folder, whatever its runtime folder: the second daemon exits at once, before any plugin runs
/// against the shared state, naming the state folder and the pid that holds it.
@Suite struct StateLockTests {
    @Test func aSecondDaemonOnTheSameStateFolderExitsBeforeAnyPluginStarts() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libTestFixtureGood.so"])
            let first = try await env.startDaemon()
            let stateDir = env.stateHome + "/berth"
            let started = ContinuousClock.now
            let second = try await env.startDaemon(arguments: ["--runtime-dir", env.root + "/run2"], waitForName: false)
            let status = try await second.waitForExit(timeout: .seconds(30))
            let elapsed = ContinuousClock.now - started
            #expect(status != 0)
            #expect(elapsed < .seconds(10), "the second daemon took \(elapsed) to exit")
            let log = second.log
            #expect(
                log.contains("state folder \"\(stateDir)\"") && log.contains("pid \(first.pid)"),
                "the message names neither the state folder nor the holder's pid: \(log)")
            // No plugin of the second daemon ran: the fixture never became active there.
            #expect(!log.contains("plugin fixture"), "\(log)")
            #expect(first.isRunning)
            let lockText = try FileSystem.readText(stateDir + "/berthd.lock")
            #expect(lockText == "\(first.pid)\n")
            // Once the first is gone the state folder is free again.
            first.signal(SIGTERM)
            #expect(try await first.waitForExit() == 0)
            try await env.startDaemon(arguments: ["--runtime-dir", env.root + "/run2"])
        }
    }
}
