import BerthKit
import BerthTestSupport
import Foundation
import Glibc
import Testing

/// Config, import and deploy sources are regular files only, read off the cooperative pool and before any gate:
/// a FIFO as berth.yaml, in conf.d or given to ImportConfig is an error naming it at once, and never holds up a
/// Reload. An alias bomb in berth.yaml is refused at start, naming the file and line.
@Suite struct HostileConfigFileTests {
    static func fifo(_ path: String) throws {
        guard mkfifo(path, 0o600) == 0 else { throw TestFailure("mkfifo \(path): \(systemErrorText(errno))") }
    }

    /// Starts berthd and expects it to exit 1 within `within` saying `expected` (which starts with the file).
    static func expectRefusedAtStart(
        _ env: TestEnvironment, expected: String, within: Duration = .seconds(15),
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let started = ContinuousClock.now
        let daemon = try await env.startDaemon(waitForName: false)
        let status = try? await daemon.waitForExit(timeout: within)
        #expect(
            status == 78, "berthd did not exit with 78 (EX_CONFIG) within \(within): \(daemon.log)", sourceLocation: sourceLocation)
        #expect(
            daemon.log.contains("berthd: \(expected)"), "berthd said: \(daemon.log)",
            sourceLocation: sourceLocation)
        #expect(ContinuousClock.now - started < within, sourceLocation: sourceLocation)
        // --check-config says the same, as quickly.
        let check = try await env.run(
            [TestEnvironment.buildDir + "/berthd", "--check-config", "--plugin-dir", env.pluginDir], timeout: within)
        #expect(check.status == 78 && check.stderr.contains(expected), "\(check)", sourceLocation: sourceLocation)
    }

    @Test func aFIFOAsBerthYamlStopsTheStartWithAMessage() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libTestFixtureGood.so"])
            try Self.fifo(env.configFile)
            try await Self.expectRefusedAtStart(
                env, expected: "\(env.configFile): cannot read the file: it is a FIFO, not a regular file")
        }
    }

    @Test func aFIFOInConfDStopsTheStartWithAMessage() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libTestFixtureGood.so"])
            try env.writeConfig("fixture:\n  greeting: hi\n")
            let dropIns = env.configHome + "/berth/conf.d"
            try FileSystem.makeDirectories(dropIns)
            try Self.fifo(dropIns + "/x.yaml")
            try await Self.expectRefusedAtStart(
                env, expected: "\(dropIns)/x.yaml: cannot read the file: it is a FIFO, not a regular file")
        }
    }

    @Test func anAliasBombInBerthYamlIsRefusedAtStartNamingTheLine() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libTestFixtureGood.so"])
            // 1 MiB, aliased 10,000 times: 10,000 nodes, 10 GiB of text for ExportConfig to write.
            let aliases = (0..<10_000).map { "k\($0): *s" }.joined(separator: ", ")
            try env.writeConfig(
                "fixture:\n  greeting: &s \"" + String(repeating: "b", count: 1 << 20) + "\"\n  items: {\(aliases)}\n")
            try await Self.expectRefusedAtStart(
                env,
                expected: "\(env.configFile):3: the document grows past 4194304 bytes (4 MiB) of text once its aliases "
                    + "are expanded", within: .seconds(20))
        }
    }

    @Test func importConfigOfAFIFOAnswersAtOnceAndReloadStillWorks() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libTestFixtureGood.so"])
            try env.writeConfig("fixture:\n  greeting: before\n")
            try await env.startDaemon()
            let fifo = env.root + "/import.yaml"
            try Self.fifo(fifo)
            let started = ContinuousClock.now
            let imported = try await env.busctl([
                "--timeout=10", "call", "org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager",
                "ImportConfig", "sbb", fifo, "false", "false",
            ])
            #expect(
                ContinuousClock.now - started < .seconds(5),
                "ImportConfig of a FIFO took \(ContinuousClock.now - started)")
            #expect(
                imported.status != 0 && imported.stderr.contains("\(fifo): cannot read the file: it is a FIFO"),
                "\(imported)")
            // The gate is free: Reload applies the new file at once.
            try env.writeConfig("fixture:\n  greeting: after\n")
            let reload = try await env.busctl([
                "--timeout=10", "call", "org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager", "Reload",
            ])
            #expect(reload.status == 0, "\(reload)")
            let greeting = try await env.busctl([
                "get-property", "org.berth.Berth1", "/org/berth/Berth1/fixture", "org.berth.Berth1.Fixture", "Greeting",
            ])
            #expect(greeting.stdout == "s \"after\"\n", "\(greeting)")
            // A FIFO given as berth.yaml to a running daemon: Reload fails with the reason and the old config stays.
            unlink(env.configFile)
            try Self.fifo(env.configFile)
            let refused = try await env.busctl([
                "--timeout=10", "call", "org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager", "Reload",
            ])
            #expect(
                refused.status != 0 && refused.stderr.contains("\(env.configFile): cannot read the file: it is a FIFO"),
                "\(refused)")
        }
    }
}
