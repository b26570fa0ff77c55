import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// Malformed configs are rejected at start with the file, the key path and the line; berthd exits 78 (EX_CONFIG),
/// which the units list in RestartPreventExitStatus= so systemd does not restart it into the same error.
@Suite struct ConfigFileTests {
    static let cases: [(String, String)] = [
        ("log_level: loud\n", ":1: log_level: \"loud\" is not one of trace, debug, info, notice, warning, error, critical"),
        ("log_level: info\nplugin_dirs: /usr/lib\n", ":2: plugin_dirs: expected a list"),
        ("job_retention: -5s\n", ":1: job_retention: "),
        ("log_level: info\nservicess:\n  a: 1\n", ":2: servicess: unknown key \"servicess\""),
        ("log_level: [\n", ":"),
        ("log_level: info\nlog_level: debug\n", ":2: log_level"),
    ]

    @Test(arguments: 0..<cases.count)
    func malformedConfigIsRejectedWithFileKeyAndLine(index: Int) async throws {
        let (text, expected) = Self.cases[index]
        try await TestEnvironment.with { env in
            try env.installPlugins(["libTestFixtureGood.so"])
            try env.writeConfig(text)
            let daemon = try await env.startDaemon(waitForName: false)
            let status = try await daemon.waitForExit()
            #expect(status == 78)
            let log = daemon.log
            #expect(log.contains("berthd: \(env.configFile)\(expected)"), "config \(text.debugDescription) gave:\n\(log)")
            // berthctl config check says the same without starting anything.
            let check = try await env.berthctl(["config", "check", env.configFile, "--plugin-dir", env.pluginDir])
            #expect(check.status != 0 && check.stderr.contains(expected), "\(check)")
        }
    }

    /// Under systemd (JOURNAL_STREAM set) the fatal start error carries `<3>`, so `journalctl -p err` shows it.
    @Test func configErrorUnderJournaldIsAnErrWithExConfig() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libTestFixtureGood.so"])
            try env.writeConfig("log_level: info\nservicess:\n  a: 1\n")
            let daemon = try await env.startDaemon(environment: ["JOURNAL_STREAM": "8:12345"], waitForName: false)
            #expect(try await daemon.waitForExit() == 78)
            let expected = "<3>berthd: \(env.configFile):2: servicess: unknown key \"servicess\""
            #expect(daemon.log.split(separator: "\n").contains { $0.hasPrefix(expected) }, "\(daemon.log)")
        }
    }

    @Test func dropInsMergeAndReportTheirOwnFile() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libTestFixtureGood.so"])
            try env.writeConfig("fixture:\n  greeting: base\n")
            let dropIns = env.configHome + "/berth/conf.d"
            try FileSystem.makeDirectories(dropIns)
            try FileSystem.writeAtomically(dropIns + "/10-greeting.yaml", text: "fixture:\n  greeting: overlay\n")
            try await env.startDaemon()
            let r = try await env.busctl(["get-property", "org.berth.Berth1", "/org/berth/Berth1/fixture",
                "org.berth.Berth1.Fixture", "Greeting"])
            #expect(r.stdout == "s \"overlay\"\n")
            try FileSystem.writeAtomically(dropIns + "/20-typo.yaml", text: "\nfixture:\n  greting: x\n")
            let check = try await env.berthctl(["config", "check", env.configFile, "--plugin-dir", env.pluginDir])
            #expect(check.stderr.contains("\(dropIns)/20-typo.yaml:3: fixture.greting: unknown key \"greting\""), "\(check)")
        }
    }

    @Test func aValidConfigChecksClean() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libTestFixtureGood.so"])
            try env.writeConfig("log_level: debug\njob_retention: 2s\nfixture:\n  greeting: hi\n  items: {a: '1'}\n")
            let check = try await env.run([TestEnvironment.buildDir + "/berthd", "--check-config", "--plugin-dir", env.pluginDir])
            #expect(check.status == 0 && check.stdout.contains("configuration is valid"), "\(check)")
        }
    }
}
