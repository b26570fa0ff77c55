@testable import ServicesPlugin
import BerthKit
import Testing

/// The strict `services:` section and specs, without a daemon.
@Suite struct ServiceDefinitionTests {
    func section(_ yaml: String) throws -> ConfigNode? {
        try YAMLParser.parse(yaml, file: "/etc/berth/berth.yaml")?["services"]
    }

    @Test func parsesEveryKey() throws {
        let config = try ServicesConfig.parse(
            section(
                """
                services:
                  autolaunch: [laser]
                  units:
                    laser:
                      exec: sleep 300
                      env: { A: "1" }
                      workdir: /tmp
                      description: the laser
                      endpoint: PYRO:laser@localhost:9090
                      ready: tcp:9090
                      restart: always
                      restart_delay: 250ms
                      restart_delay_max: 4s
                      start_timeout: 5s
                      stop_timeout: 2s
                      start_limit_burst: 3
                      start_limit_interval: 20s
                      log_max_bytes: 1M
                      log_keep: 2
                """), logDirectory: "/logs")
        #expect(config.autolaunch == ["laser"])
        let spec = try #require(config.units.first).spec
        #expect(spec.argv == ["sleep", "300"])
        #expect(spec.environment == ["A": "1"] && spec.workingDirectory == "/tmp" && spec.logPath == "/logs/laser.log")
        #expect(spec.readiness == .tcp(port: 9090) && spec.restart == .always)
        #expect(spec.restartDelay == .milliseconds(250) && spec.restartDelayMax == .seconds(4))
        #expect(spec.startTimeout == .seconds(5) && spec.stopTimeout == .seconds(2))
        #expect(spec.startLimitBurst == 3 && spec.startLimitInterval == .seconds(20))
        #expect(spec.logMaxBytes == 1 << 20 && spec.logKeep == 2)
    }

    @Test(arguments: [
        ("services:\n  autolaunch: [ghost]\n", "berth.yaml:2: services.autolaunch: \"ghost\" is not a defined service"),
        ("services:\n  units:\n    a: { exec: [] }\n", "berth.yaml:3: services.units.a.exec: the command is empty"),
        (
            "services:\n  units:\n    a:\n      exec: [sleep]\n      stop_timeout: -1s\n",
            "berth.yaml:5: services.units.a.stop_timeout"
        ),
        ("services:\n  unit: {}\n", "berth.yaml:2: services.unit: unknown key \"unit\""),
        (
            "services:\n  units:\n    a:\n      exec: [sleep]\n      restart_delay: 2s\n      restart_delay_max: 1s\n",
            "services.units.a.restart_delay_max"
        ),
        ("services:\n  units:\n    \"bad/name\": { exec: [sleep] }\n", "is not a valid service name"),
        ("services:\n  units:\n    a: { exec: [sleep], workdir: /nonexistent-folder }\n", "does not exist"),
    ])
    func rejectsWithFileLineAndKey(yaml: String, expected: String) throws {
        let error = #expect(throws: BerthError.self) { try ServicesConfig.parse(section(yaml), logDirectory: "/logs") }
        #expect(error?.code == .invalidConfig)
        #expect(error?.message.contains(expected) == true, "\(error?.message ?? "")")
    }

    @Test func equalDefinitionsCompareEqualWhateverTheirSource() throws {
        let a = try ServiceDefinition.parse(name: "x", yaml: "exec: [sleep, \"1\"]\n", source: "a", logDirectory: "/l")
        let b = try ServiceDefinition.parse(
            name: "x", yaml: "# same\nexec: [sleep, \"1\"]\n", source: "b", logDirectory: "/l")
        let c = try ServiceDefinition.parse(name: "x", yaml: "exec: [sleep, \"2\"]\n", source: "c", logDirectory: "/l")
        #expect(a == b && a != c)
    }
}
