import Glibc
import Testing

@testable import BerthKit

/// Many start/stop cycles and many crashes with restart_delay 0: every cycle ends in the state it should, with a new
/// process each time. (How long they take is measured by Benchmarks/services/run.sh, the `starts` and `crash`
/// rows, on a release build: a wall-clock bound in a unit test only measures how busy the machine is.)
@Suite(.serialized) struct SupervisorCycleTests {
    typealias Support = SupervisorTestSupport

    @Test(.timeLimit(.minutes(2))) func hundredStartStopCyclesOfAnImmediateService() async throws {
        let (supervisor, dir) = try Support.makeSupervisor()
        defer { Support.removeTree(dir) }
        let unit = supervisor.process(ProcessSpec(name: "quick", argv: ["/bin/sleep", "300"], logPath: dir + "/q.log"))
        var pids: Set<Int32> = []
        for _ in 0..<100 {
            try await unit.start()
            let started = unit.snapshot
            #expect(started.state == .active && started.mainPID > 0)
            pids.insert(started.mainPID)
            await unit.stop()
            #expect(unit.snapshot.state == .inactive)
            #expect(Support.members(ofGroup: started.mainPID).isEmpty)
        }
        #expect(pids.count == 100)
    }

    @Test(.timeLimit(.minutes(2))) func fiftyCrashesWithRestartDelayZeroComeBackRunning() async throws {
        let (supervisor, dir) = try Support.makeSupervisor()
        defer { Support.removeTree(dir) }
        let recorder = SnapshotRecorder()
        let unit = supervisor.process(
            ProcessSpec(
                name: "phoenix", argv: ["/bin/sleep", "300"], restart: .always, restartDelay: .zero,
                startLimitBurst: 1000, startLimitInterval: .seconds(1)),
            onChange: recorder.record)
        try await unit.start()
        for _ in 0..<50 {
            let pid = unit.snapshot.mainPID
            let killedAt = Support.now
            kill(pid, SIGKILL)
            let restarted = {
                recorder.all.first { $0.time >= killedAt && $0.snapshot.state == .active && $0.snapshot.mainPID != pid }
            }
            #expect(await Support.eventually { restarted() != nil })
        }
        #expect(unit.snapshot.restarts == 50)
        #expect(unit.snapshot.state == .active)
        await unit.stop()
    }
}
