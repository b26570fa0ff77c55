import Glibc
import Testing

@testable import BerthKit

/// The lifecycle without I/O: events in, actions out, time passed explicitly.
@Suite struct SupervisorStateMachineTests {
    typealias Machine = SupervisorStateMachine

    struct Harness {
        var machine: Machine
        var now: UInt64 = 1_000_000

        init(_ spec: ProcessSpec) { machine = Machine(config: .init(spec)) }

        mutating func send(_ event: Machine.Event, after usec: UInt64 = 0) -> [Machine.Action] {
            now += usec
            return machine.handle(event, now: .init(monotonic: now, wall: now + 42))
        }

        var state: (UnitState, UnitSubState) { (machine.state, machine.subState) }
    }

    static func spec(
        readiness: Readiness = .immediate, restart: RestartPolicy = .onFailure, delay: Duration = .milliseconds(100),
        delayMax: Duration = .seconds(30), burst: Int = 5
    ) -> ProcessSpec {
        ProcessSpec(
            name: "x", argv: ["/bin/true"], readiness: readiness, restart: restart, restartDelay: delay,
            restartDelayMax: delayMax, startTimeout: .seconds(5), stopTimeout: .seconds(2), startLimitBurst: burst,
            startLimitInterval: .seconds(10))
    }

    @Test func immediateReadinessIsActiveAtSpawn() {
        var h = Harness(Self.spec())
        #expect(h.send(.start(manual: true)) == [.spawn])
        #expect(h.state == (.activating, .start))
        #expect(h.send(.spawned(pid: 10)) == [.finishStart(nil)])
        #expect(h.state == (.active, .running))
        #expect(h.machine.mainPID == 10)
        #expect(h.machine.activeSinceUSec == h.now + 42)
        #expect(h.send(.start(manual: true)) == [.finishStart(nil)])
    }

    @Test func notifyReadinessWaitsForReadyWithinTheStartTimeout() {
        var h = Harness(Self.spec(readiness: .notify))
        _ = h.send(.start(manual: true))
        #expect(h.send(.spawned(pid: 10)) == [.armTimer(.startTimeout, afterUSec: 5_000_000)])
        #expect(h.state == (.activating, .start))
        #expect(h.send(.ready) == [.cancelTimer, .finishStart(nil)])
        #expect(h.state == (.active, .running))
        #expect(h.send(.ready) == [])
    }

    @Test func startTimeoutStopsTheGroupAndFailsTheStart() {
        var h = Harness(Self.spec(readiness: .notify))
        _ = h.send(.start(manual: true))
        _ = h.send(.spawned(pid: 10))
        #expect(
            h.send(.timerFired(.startTimeout))
                == [.signalGroup(SIGTERM), .armTimer(.stopTimeout, afterUSec: 2_000_000)])
        #expect(h.state == (.deactivating, .stopSigterm))
        #expect(h.send(.mainExited(status: -SIGTERM)) == [.awaitGroupGone])
        let actions = h.send(.groupGone)
        #expect(h.state == (.failed, .failed))
        #expect(h.machine.result == .timeout)
        guard case .finishStart(let error?) = actions.dropFirst().first else {
            Issue.record("no failed start in \(actions)")
            return
        }
        #expect(error.code == .timeout)
        #expect(error.message == "service \"x\" did not become ready within 5.0 s and was stopped")
    }

    @Test func stopEscalatesToSigkillAfterTheStopTimeout() {
        var h = Harness(Self.spec())
        _ = h.send(.start(manual: true))
        _ = h.send(.spawned(pid: 10))
        #expect(h.send(.stop) == [.signalGroup(SIGTERM), .armTimer(.stopTimeout, afterUSec: 2_000_000)])
        #expect(h.send(.stop) == [])
        #expect(
            h.send(.timerFired(.stopTimeout)) == [.signalGroup(SIGKILL), .armTimer(.stopTimeout, afterUSec: 2_000_000)])
        #expect(h.state == (.deactivating, .stopSigkill))
        #expect(h.send(.mainExited(status: -SIGKILL)) == [.awaitGroupGone])
        #expect(h.send(.groupGone) == [.cancelTimer, .finishStop])
        #expect(h.state == (.inactive, .dead))
        #expect(h.machine.exitStatus == -9)
    }

    @Test func crashLoopEndsInFailedAtTheStartLimitAndAManualStartResetsIt() {
        var h = Harness(Self.spec(delay: .zero, burst: 3))
        _ = h.send(.start(manual: true))
        for pid in Int32(10)...12 {
            _ = h.send(.spawned(pid: pid))
            #expect(h.send(.mainExited(status: 1)) == [
                .signalGroup(SIGTERM), .armTimer(.stopTimeout, afterUSec: 2_000_000), .awaitGroupGone,
            ])
            let actions = h.send(.groupGone, after: 1000)
            if pid < 12 {
                #expect(actions == [.cancelTimer, .armTimer(.restartDelay, afterUSec: 0)])
                #expect(h.state == (.activating, .autoRestart))
                #expect(h.send(.timerFired(.restartDelay)) == [.spawn])
            } else {
                #expect(h.state == (.failed, .failed))
                #expect(h.machine.result == .startLimitHit)
            }
        }
        #expect(h.machine.restarts == 2)
        #expect(h.send(.start(manual: true)) == [.spawn])
    }

    @Test func backoffDoublesUpToTheCap() {
        var h = Harness(Self.spec(delay: .milliseconds(100), delayMax: .milliseconds(300), burst: 100))
        _ = h.send(.start(manual: true))
        var delays: [UInt64] = []
        for pid in Int32(10)..<15 {
            _ = h.send(.spawned(pid: pid))
            _ = h.send(.mainExited(status: -SIGSEGV))
            for case .armTimer(.restartDelay, let delay) in h.send(.groupGone) { delays.append(delay) }
            _ = h.send(.timerFired(.restartDelay))
        }
        #expect(delays == [100_000, 200_000, 300_000, 300_000, 300_000])
    }

    @Test func restartPolicies() {
        for (policy, status, expected) in [
            (RestartPolicy.onFailure, Int32(0), UnitState.inactive), (.onFailure, 3, .activating),
            (.always, 0, .activating), (.no, 0, .inactive), (.no, 3, .failed), (.no, -9, .failed),
        ] {
            var h = Harness(Self.spec(restart: policy))
            _ = h.send(.start(manual: true))
            _ = h.send(.spawned(pid: 10))
            _ = h.send(.mainExited(status: status))
            _ = h.send(.groupGone)
            #expect(h.machine.state == expected, "\(policy) after status \(status)")
        }
    }

    @Test func spawnFailureIsFailedAtOnceWithoutRestart() {
        var h = Harness(Self.spec(restart: .always))
        _ = h.send(.start(manual: true))
        let message = "service \"x\" failed to start: \"/usr/bin/pyhton3\" does not exist"
        #expect(h.send(.spawnFailed(message)) == [.finishStart(.failed(message))])
        #expect(h.state == (.failed, .failed))
        #expect(h.machine.result == .spawnFailed)
        #expect(h.machine.lastError == message)
    }

    @Test func exitBeforeReadyFailsTheStartAndStillRestarts() {
        var h = Harness(Self.spec(readiness: .notify))
        _ = h.send(.start(manual: true))
        _ = h.send(.spawned(pid: 10))
        _ = h.send(.mainExited(status: 2))
        let actions = h.send(.groupGone)
        #expect(actions.contains(.finishStart(.failed("service \"x\" exited before it became ready (exited with status 2)"))))
        #expect(h.state == (.activating, .autoRestart))
    }

    @Test func stopDuringAutoRestartCancelsIt() {
        var h = Harness(Self.spec())
        _ = h.send(.start(manual: true))
        _ = h.send(.spawned(pid: 10))
        _ = h.send(.mainExited(status: 1))
        _ = h.send(.groupGone)
        #expect(h.send(.stop) == [.cancelTimer, .finishStop])
        #expect(h.state == (.inactive, .dead))
        #expect(h.send(.timerFired(.restartDelay)) == [])
    }

    @Test func startWhileStoppingRunsAfterTheStop() {
        var h = Harness(Self.spec())
        _ = h.send(.start(manual: true))
        _ = h.send(.spawned(pid: 10))
        _ = h.send(.stop)
        #expect(h.send(.start(manual: true)) == [])
        _ = h.send(.mainExited(status: -SIGTERM))
        #expect(h.send(.groupGone) == [.cancelTimer, .finishStop, .spawn])
        #expect(h.state == (.activating, .start))
    }

    @Test func stoppingNotificationThenExitFollowsTheExitStatus() {
        var h = Harness(Self.spec(restart: .onFailure))
        _ = h.send(.start(manual: true))
        _ = h.send(.spawned(pid: 10))
        _ = h.send(.stopping)
        #expect(h.state == (.deactivating, .stopping))
        _ = h.send(.mainExited(status: 0))
        _ = h.send(.groupGone)
        #expect(h.state == (.inactive, .dead))
    }

    @Test func notifyMessagesParse() {
        let message = NotifyMessage(parsing: "READY=1\nSTATUS=warming up\nX_BERTH_ENDPOINT=PYRO:obj@127.0.0.1:9999\nMAINPID=42\nX=1")
        #expect(message == NotifyMessage(ready: true, status: "warming up", mainPID: 42, endpoint: "PYRO:obj@127.0.0.1:9999"))
        #expect(NotifyMessage(parsing: "STOPPING=1").stopping)
        #expect(!NotifyMessage(parsing: "READY=0").ready)
    }

    @Test func procStatParsesOddCommandNames() {
        let line = "1234 (a (b) c) S 1 1234 1234 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 987654 1000 10"
        #expect(ProcStat.parse(line) == ProcStat(pid: 1234, state: "S", parentPID: 1, processGroup: 1234, session: 1234, startTime: 987654))
    }
}
