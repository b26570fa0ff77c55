import Glibc
import Testing

@testable import BerthKit

/// Figures for the report (printed, with generous bounds so a loaded CI machine does not fail them): start → ready
/// for an immediate service, and crash → running again with restart_delay 0.
@Suite(.serialized) struct SupervisorLatencyTests {
    typealias Support = SupervisorTestSupport

    static func percentile(_ values: [Double], _ p: Double) -> Double {
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
    }

    @Test(.timeLimit(.minutes(2))) func startToReadyForAnImmediateService() async throws {
        let (supervisor, dir) = try Support.makeSupervisor()
        defer { Support.removeTree(dir) }
        let unit = supervisor.process(ProcessSpec(name: "quick", argv: ["/bin/sleep", "300"], logPath: dir + "/q.log"))
        var starts: [Double] = []
        var stops: [Double] = []
        for _ in 0..<100 {
            let begin = Support.now
            try await unit.start()
            let started = Support.now
            await unit.stop()
            starts.append(Double(started - begin) / 1000)
            stops.append(Double(Support.now - started) / 1000)
        }
        let p50 = Self.percentile(starts, 0.5)
        print("supervisor: start → ready (immediate), 100 starts: p50 \(p50) ms, p90 \(Self.percentile(starts, 0.9)) ms; "
            + "stop → group gone: p50 \(Self.percentile(stops, 0.5)) ms")
        #expect(p50 < 50)
    }

    @Test(.timeLimit(.minutes(2))) func crashToRunningAgainWithRestartDelayZero() async throws {
        let (supervisor, dir) = try Support.makeSupervisor()
        defer { Support.removeTree(dir) }
        let recorder = SnapshotRecorder()
        let unit = supervisor.process(
            ProcessSpec(
                name: "phoenix", argv: ["/bin/sleep", "300"], restart: .always, restartDelay: .zero,
                startLimitBurst: 1000, startLimitInterval: .seconds(1)),
            onChange: recorder.record)
        try await unit.start()
        var samples: [Double] = []
        for _ in 0..<50 {
            let pid = unit.snapshot.mainPID
            let killedAt = Support.now
            kill(pid, SIGKILL)
            let restarted = { recorder.all.first { $0.time >= killedAt && $0.snapshot.state == .active && $0.snapshot.mainPID != pid } }
            #expect(await Support.eventually { restarted() != nil })
            let activeAt = try #require(restarted()).time
            samples.append(Double(activeAt - killedAt) / 1000)
        }
        let p50 = Self.percentile(samples, 0.5)
        print("supervisor: SIGKILL → running again (restart_delay 0), 50 crashes: p50 \(p50) ms, p90 \(Self.percentile(samples, 0.9)) ms")
        #expect(p50 < 100)
        #expect(unit.snapshot.restarts == 50)
        await unit.stop()
    }
}
