import Glibc
import Synchronization
import Testing

@testable import BerthKit

/// The pids file is written off the epoll thread and outside a unit's lock: a write that cannot finish (a FIFO at
/// the temp name, or a slow disk) never holds supervision up. A started unit is still in the file when start()
/// returns (what the kill -9 recovery relies on).
@Suite struct SupervisorPidsFileTests {
    typealias Support = SupervisorTestSupport

    @Test(.timeLimit(.minutes(1))) func aWriteThatCannotFinishDoesNotHoldTheEpollThread() async throws {
        try Supervisor.becomeSubreaper()
        let dir = Support.makeTempDirectory()
        defer { Support.removeTree(dir) }
        var logger = Logger(label: "test.supervisor")
        logger.logLevel = .critical
        // A watcher of its own: the old code blocked its thread for good.
        let watcher = FDWatcher()
        let supervisor = try Supervisor(runtimeDirectory: dir + "/run", watcher: watcher, logger: logger)
        // Opening a FIFO for writing waits for a reader: a write done on the epoll thread would wait for ever.
        #expect(mkfifo(supervisor.pidsFile + ".tmp", 0o600) == 0)
        let unit = supervisor.process(ProcessSpec(name: "fifo", argv: ["/bin/sleep", "300"], restart: .no))
        let started = Shared(false)
        let starting = Task {
            try await unit.start()
            started.with { $0 = true }
        }
        let ready = await Support.eventually(within: 10) { started.get }
        #expect(ready, "start() did not return: the pids file write held the epoll thread")
        if !ready {
            // Free the stuck open so the watcher's thread can go on and the unit can be stopped.
            let reader = open(supervisor.pidsFile + ".tmp", O_RDONLY | O_NONBLOCK)
            defer { if reader >= 0 { close(reader) } }
            _ = try? await starting.value
        }
        let pid = unit.snapshot.mainPID
        #expect(pid > 0)
        let text = readSmallFile(supervisor.pidsFile) ?? ""
        #expect(text.contains("\n\(pid) "), "the pids file lists the group: \(text)")
        // Supervision goes on: the unit stops, and the file no longer lists it.
        await unit.stop()
        await supervisor.pidsFileWritten()
        #expect(!(readSmallFile(supervisor.pidsFile) ?? "").contains("\n\(pid) "))
    }

    @Test(.timeLimit(.minutes(1))) func manyUnitsStartedTogetherAreAllInTheFile() async throws {
        let (supervisor, dir) = try Support.makeSupervisor()
        defer { Support.removeTree(dir) }
        let units = (0..<8).map { i in
            supervisor.process(ProcessSpec(name: "many-\(i)", argv: ["/bin/sleep", "300"], restart: .no))
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for unit in units { group.addTask { try await unit.start() } }
            try await group.waitForAll()
        }
        // Each start() returned after its group was written: the file lists them all now, without waiting.
        let text = readSmallFile(supervisor.pidsFile) ?? ""
        for unit in units { #expect(text.contains("\n\(unit.snapshot.mainPID) "), "\(text)") }
        await withTaskGroup(of: Void.self) { group in
            for unit in units { group.addTask { await unit.stop() } }
        }
        await supervisor.pidsFileWritten()
        #expect(readSmallFile(supervisor.pidsFile) == "boot \(ProcStat.bootID)\n")
    }
}
