import CBerthShim
import Glibc
import Testing

@testable import BerthKit

/// The kill -9 story: direct children die with the spawning thread (PR_SET_PDEATHSIG), and the groups recorded in
/// the pids file are killed at the next start, unless their pgid now belongs to someone else.
@Suite(.serialized) struct SupervisorLeftoverTests {
    typealias Support = SupervisorTestSupport

    @Test(.timeLimit(.minutes(1))) func theNextStartKillsTheGroupsAKilledDaemonLeft() async throws {
        let (supervisor, dir) = try Support.makeSupervisor()
        defer { Support.removeTree(dir) }
        let recorder = SnapshotRecorder()
        let unit = supervisor.process(
            ProcessSpec(name: "orphan-maker", argv: ["sh", "-c", "sleep 300 & sleep 300 & wait"], restart: .no),
            onChange: recorder.record)
        try await unit.start()
        let pgid = unit.snapshot.mainPID
        #expect(await Support.eventually { Support.members(ofGroup: pgid).count >= 3 })
        // What a killed daemon leaves: its pids file, its groups still running. A new daemon starts over it.
        let nextRun = dir + "/next"
        try Supervisor.makeDirectories(nextRun)
        let copied = try #require(readSmallFile(supervisor.pidsFile))
        let fd = open(nextRun + "/supervisor.pids", O_WRONLY | O_CREAT, 0o600)
        _ = Array(copied.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        let next = try Supervisor(runtimeDirectory: nextRun, logger: supervisor.logger)
        #expect(next.leftoversKilled == [pgid])
        #expect(await Support.eventually { Support.members(ofGroup: pgid).isEmpty })
        #expect(await Support.eventually { unit.snapshot.state == .failed })
        #expect(unit.snapshot.exitStatus == -SIGKILL)
        #expect(readSmallFile(nextRun + "/supervisor.pids") == nil)
    }

    @Test(.timeLimit(.minutes(1))) func aRecycledProcessGroupIsLeftAlone() async throws {
        let (supervisor, dir) = try Support.makeSupervisor()
        defer { Support.removeTree(dir) }
        let unit = supervisor.process(ProcessSpec(name: "innocent", argv: ["sleep", "300"]))
        try await unit.start()
        let pgid = unit.snapshot.mainPID
        let start = try #require(ProcStat.read(pid: pgid)).startTime
        let file = dir + "/old.pids"
        for (content, expected) in [
            ("boot \(ProcStat.bootID)\n\(pgid) \(start + 1) someone-else\n", [Int32]()),
            ("boot 00000000-0000-0000-0000-000000000000\n\(pgid) \(start) other-boot\n", []),
        ] {
            let fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            _ = Array(content.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
            #expect(Supervisor.reapLeftovers(stateFile: file, logger: supervisor.logger) == expected)
        }
        #expect(unit.snapshot.state == .active)
        #expect(kill(pgid, 0) == 0)
        await unit.stop()
    }

    /// PR_SET_PDEATHSIG follows the spawning *thread*: a child spawned from a thread that exits is killed. This is
    /// why the supervisor spawns only from the epoll thread, which lives as long as the daemon.
    @Test(.timeLimit(.minutes(1))) func aChildDiesWithTheThreadThatSpawnedIt() async throws {
        let spec = ProcessSpec(name: "pdeathsig", argv: ["/bin/sleep", "300"])
        let pid = try spawnFromShortLivedThread(spec)
        #expect(pid > 0)
        var status: Int32 = 0
        #expect(await Support.eventually { cberth_reap(pid, &status) == 1 })
        #expect(status == -SIGKILL)
    }

    private func spawnFromShortLivedThread(_ spec: ProcessSpec) throws -> Int32 {
        final class Box: @unchecked Sendable {
            let spec: ProcessSpec
            var result: Result<Int32, any Error> = .success(0)
            init(_ spec: ProcessSpec) { self.spec = spec }
        }
        let box = Box(spec)
        var thread = pthread_t()
        let context = Unmanaged.passRetained(box).toOpaque()
        #expect(
            pthread_create(
                &thread, nil,
                { context in
                    let box = Unmanaged<Box>.fromOpaque(context!).takeRetainedValue()
                    box.result = Result {
                        try Spawner.spawn(box.spec, path: box.spec.argv[0], environment: [:], output: -1)
                    }
                    return nil
                }, context) == 0)
        pthread_join(thread, nil)
        return try box.result.get()
    }
}
