import Glibc
import Testing

@testable import BerthKit

/// Real processes under the supervisor: stop semantics, escalation, crash loops, backoff, spawn errors.
@Suite(.serialized) struct SupervisorProcessTests {
    typealias Support = SupervisorTestSupport

    @Test(.timeLimit(.minutes(1))) func forkingServiceLeavesNoProcessOfItsGroupAfterStop() async throws {
        let (supervisor, dir) = try Support.makeSupervisor()
        defer { Support.removeTree(dir) }
        let unit = supervisor.process(ProcessSpec(name: "forker", argv: ["sh", "-c", "sleep 300 & sleep 300 & wait"]))
        try await unit.start()
        let pgid = unit.snapshot.mainPID
        #expect(unit.snapshot.state == .active)
        #expect(await Support.eventually { Support.members(ofGroup: pgid).count >= 3 })
        #expect(readSmallFile(supervisor.pidsFile)?.contains("\n\(pgid) ") == true)
        let started = Support.now
        await unit.stop()
        let stopMillis = Double(Support.now - started) / 1000
        #expect(Support.members(ofGroup: pgid).isEmpty, "left: \(Support.members(ofGroup: pgid))")
        #expect(unit.snapshot.state == .inactive)
        #expect(unit.snapshot.mainPID == 0)
        #expect(stopMillis < 2000)
        #expect(readSmallFile(supervisor.pidsFile)?.contains("\n\(pgid) ") == false)
        print("supervisor: stop of a 3-process group took \(stopMillis) ms")
    }

    @Test(.timeLimit(.minutes(1))) func grandchildrenAreKilledWhenTheMainProcessExits() async throws {
        let (supervisor, dir) = try Support.makeSupervisor()
        defer { Support.removeTree(dir) }
        let recorder = SnapshotRecorder()
        let unit = supervisor.process(
            ProcessSpec(name: "leaver", argv: ["sh", "-c", "sleep 300 & exit 0"], restart: .no), onChange: recorder.record)
        try await unit.start()
        let pgid = try #require(recorder.spawnPIDs.first)
        #expect(await Support.eventually { unit.snapshot.state == .inactive })
        #expect(Support.members(ofGroup: pgid).isEmpty)
        #expect(unit.snapshot.exitStatus == 0)
    }

    @Test(.timeLimit(.minutes(1))) func aChildIgnoringSigtermIsKilledAfterTheStopTimeout() async throws {
        let (supervisor, dir) = try Support.makeSupervisor()
        defer { Support.removeTree(dir) }
        let recorder = SnapshotRecorder()
        let unit = supervisor.process(
            ProcessSpec(name: "stubborn", argv: ["sh", "-c", "trap '' TERM; sleep 300"], stopTimeout: .milliseconds(300)),
            onChange: recorder.record)
        try await unit.start()
        let pgid = unit.snapshot.mainPID
        #expect(await Support.eventually { Support.members(ofGroup: pgid).count >= 2 })
        let started = Support.now
        await unit.stop()
        let elapsed = Double(Support.now - started) / 1e6
        #expect(elapsed >= 0.3 && elapsed < 5, "stop took \(elapsed) s")
        #expect(unit.snapshot.exitStatus == -SIGKILL)
        #expect(recorder.all.contains { $0.snapshot.subState == .stopSigkill })
        #expect(Support.members(ofGroup: pgid).isEmpty)
    }

    @Test(.timeLimit(.minutes(1))) func aCrashLoopReachesFailedAtTheStartLimit() async throws {
        let (supervisor, dir) = try Support.makeSupervisor()
        defer { Support.removeTree(dir) }
        let unit = supervisor.process(
            ProcessSpec(
                name: "crasher", argv: ["sh", "-c", "exit 3"], restart: .onFailure, restartDelay: .zero,
                startLimitBurst: 5, startLimitInterval: .seconds(10)))
        try await unit.start()
        #expect(await Support.eventually { unit.snapshot.state == .failed })
        let snapshot = unit.snapshot
        #expect(snapshot.result == .startLimitHit)
        #expect(snapshot.restarts == 4)
        #expect(snapshot.exitStatus == 3)
        #expect(snapshot.lastError.contains("start limit"))
        // It stays failed; a manual start resets the limit and runs it again.
        try await unit.start()
        #expect(await Support.eventually { unit.snapshot.state == .failed && unit.snapshot.restarts == 8 })
    }

    @Test(.timeLimit(.minutes(1))) func backoffGrowsBetweenSpawns() async throws {
        let (supervisor, dir) = try Support.makeSupervisor()
        defer { Support.removeTree(dir) }
        let recorder = SnapshotRecorder()
        let unit = supervisor.process(
            ProcessSpec(
                name: "backoff", argv: ["sh", "-c", "exit 1"], restart: .always, restartDelay: .milliseconds(40),
                restartDelayMax: .seconds(5), startLimitBurst: 5, startLimitInterval: .seconds(30)),
            onChange: recorder.record)
        try await unit.start()
        #expect(await Support.eventually { unit.snapshot.state == .failed })
        let spawns = recorder.spawnTimes
        #expect(spawns.count == 5)
        let gaps = zip(spawns.dropFirst(), spawns).map { Double($0 - $1) / 1000 }
        print("supervisor: gaps between spawns (ms): \(gaps.map { Int($0) })")
        for (index, gap) in gaps.enumerated() {
            let expected = 40.0 * Double(1 << index)
            // Never shorter than the backoff; longer only by scheduling delay (a second at most on a loaded CI
            // machine running the whole suite), far below the next doubling's worth from the 5 s cap.
            #expect(gap >= expected && gap < expected + 1000, "gap \(index): \(gap) ms, expected \(expected)")
        }
    }

    @Test(.timeLimit(.minutes(1))) func aMissingBinaryIsAClearErrorNotACrashLoop() async throws {
        let (supervisor, dir) = try Support.makeSupervisor()
        defer { Support.removeTree(dir) }
        let unit = supervisor.process(ProcessSpec(name: "x", argv: ["/usr/bin/pyhton3", "-V"], restart: .always))
        let error = await #expect(throws: BerthError.self) { try await unit.start() }
        #expect(error?.code == .failed)
        #expect(error?.message == "service \"x\" failed to start: \"/usr/bin/pyhton3\" does not exist")
        #expect(unit.snapshot.state == .failed)
        #expect(unit.snapshot.result == .spawnFailed)
        #expect(unit.snapshot.restarts == 0)

        let plain = dir + "/server"
        close(open(plain, O_WRONLY | O_CREAT, 0o644))
        let notExecutable = supervisor.process(ProcessSpec(name: "y", kind: "instance", argv: ["./server"], workingDirectory: dir))
        let second = await #expect(throws: BerthError.self) { try await notExecutable.start() }
        #expect(second?.message == "instance \"y\" failed to start: \"./server\" is not executable")

        let unknown = supervisor.process(ProcessSpec(name: "z", argv: ["no-such-tool-berth"], environment: ["PATH": "/usr/bin"]))
        let third = await #expect(throws: BerthError.self) { try await unknown.start() }
        #expect(third?.message == "service \"z\" failed to start: \"no-such-tool-berth\" was not found in PATH (/usr/bin)")
    }

    @Test(.timeLimit(.minutes(1))) func environmentAndWorkingFolderReachTheChild() async throws {
        let (supervisor, dir) = try Support.makeSupervisor()
        defer { Support.removeTree(dir) }
        let recorder = SnapshotRecorder()
        let unit = supervisor.process(
            ProcessSpec(
                name: "env", argv: ["sh", "-c", "echo \"$GREETING $(pwd) $(ps -o pgid= -p $$ | tr -d ' ')\""],
                environment: ["GREETING": "hello"], workingDirectory: "/tmp", logPath: dir + "/env.log",
                restart: .no),
            onChange: recorder.record)
        try await unit.start()
        // The child may exit before start() returns (MainPID back to 0): take the pid from the spawn's snapshot.
        let pid = try #require(recorder.spawnPIDs.first)
        #expect(await Support.eventually { unit.snapshot.state == .inactive })
        #expect(unit.tail(lines: 1) == ["hello /tmp \(pid)"])
    }

    @Test(.timeLimit(.minutes(1))) func restartSpawnsANewProcessAndReportsChanges() async throws {
        let (supervisor, dir) = try Support.makeSupervisor()
        defer { Support.removeTree(dir) }
        let unit = supervisor.process(ProcessSpec(name: "r", argv: ["sleep", "300"]))
        var changes = unit.snapshots().makeAsyncIterator()
        #expect(await changes.next()?.state == .inactive)
        try await unit.start()
        let first = unit.snapshot.mainPID
        try await unit.restart()
        #expect(unit.snapshot.mainPID != first && unit.snapshot.mainPID != 0)
        #expect(unit.snapshot.activeSinceUSec > 0)
        var seen: [UnitState] = []
        while seen.count < 6, let next = await changes.next() {
            if next.state != seen.last { seen.append(next.state) }
        }
        #expect(seen == [.activating, .active, .deactivating, .inactive, .activating, .active])
        await unit.stop()
        #expect(unit.snapshot.activeSinceUSec == 0)
    }
}
