import BerthKit
import Testing

@testable import RecorderPlugin

@Suite struct EngineCheckTests {
    @Test func allChecksPassOnAGoodSetup() async throws {
        let f = try EngineFixture("check")
        let engine = f.engine()
        let results = await engine.check()
        #expect(results.map(\.name) == ["config", "device", "storage", "free_space", "database", "schedule"])
        #expect(results.allSatisfy { $0.passed }, "\(results.filter { !$0.passed })")
        #expect(results.first { $0.name == "device" }?.message.contains("8000 Hz, 1 channel(s), S16_LE") == true)
        #expect(results.first { $0.name == "schedule" }?.message.contains("0.2 s every 0.5 s, all day (UTC)") == true)
        #expect(engine.status()["program"] == .string("ok"))
    }

    enum BadConfig: String, CaseIterable, Sendable {
        case rateZero, channelsZero, unknownFormat, badWindow, badZone, relativeStorage

        func apply(_ c: inout RecorderConfig) {
            switch self {
            case .rateZero: c.sampleRate = 0
            case .channelsZero: c.channels = 0
            case .unknownFormat: c.format = "U8"
            case .badWindow: c.schedule.windows = [.init(start: "7am", end: "18:00")]
            case .badZone: c.fileTimeZone = "Nowhere/Town"
            case .relativeStorage: c.storagePath = "rec"
            }
        }

        var expected: String {
            switch self {
            case .rateZero: "sample_rate 0"
            case .channelsZero: "channels 0"
            case .unknownFormat: "format \"U8\" is not one of"
            case .badWindow: "schedule.windows[0].start"
            case .badZone: "file_timezone"
            case .relativeStorage: "storage \"rec\""
            }
        }
    }

    @Test(arguments: BadConfig.allCases)
    func badConfigFailsChecksAndRefusesToRun(bad: BadConfig) async throws {
        let (label, expected) = (bad.rawValue, bad.expected)
        let f = try EngineFixture("badconfig")
        var config = f.config
        bad.apply(&config)
        let engine = f.engine(config)
        let results = await engine.check()
        let failed = results.filter { !$0.passed }
        #expect(failed.contains { $0.name == "config" && $0.message.contains(expected) }, "\(label): \(failed)")
        #expect(failed.contains { $0.name == "device" && $0.message.contains("not checked") })
        let start = await #expect(throws: BerthError.self) { try await engine.start() }
        #expect(start?.code == .invalidConfig)
        #expect(start?.message.contains(expected) == true)
        let deploy = await #expect(throws: BerthError.self) {
            try await engine.startDeployment(name: "x", latitude: 0, longitude: 0, force: true)
        }
        #expect(deploy?.code == .invalidConfig)
        let record = await #expect(throws: BerthError.self) { try await engine.recordNow(seconds: 1) }
        #expect(record?.code == .invalidConfig)
        let status = engine.status()
        #expect(status["program"] == .string("unhealthy"))
        #expect(status["daemon"] == .string("inactive"))
    }

    @Test func unknownPCMFailsOnlyTheDeviceCheck() async throws {
        let f = try EngineFixture("nopcm")
        var config = f.config
        config.device = "no_such_pcm"
        let engine = f.engine(config)
        try await engine.start()
        let failed = await engine.check().filter { !$0.passed }
        #expect(failed.map(\.name) == ["device"])
        #expect(failed.first?.message.contains("cannot open ALSA PCM \"no_such_pcm\"") == true, "\(failed)")
        // Starting a deployment runs the checks first.
        let error = await #expect(throws: BerthError.self) {
            try await engine.startDeployment(name: "pond", latitude: 1, longitude: 2)
        }
        #expect(error?.code == .healthCheckFailed)
        #expect(error?.message.contains("device: cannot open") == true)
        #expect(engine.status()["program"] == .string("unhealthy"))
        await engine.shutdown()
    }

    @Test func freeSpaceBelowTheMinimumFailsItsCheck() async throws {
        var f = try EngineFixture("lowspace")
        f.config.minFreeBytes = 1 << 30
        let engine = f.engine(freeBytes: { _ in 1000 })
        let failed = await engine.check().filter { !$0.passed }
        #expect(failed.map(\.name) == ["free_space"])
        #expect(failed.first?.message.contains("1000 bytes free") == true)
    }
}
