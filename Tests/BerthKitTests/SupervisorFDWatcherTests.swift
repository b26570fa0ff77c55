import CBerthShim
import Glibc
import Synchronization
import Testing

@testable import BerthKit

/// The shared epoll thread: fd callbacks, async readability, timers in deadline order, cancellation.
@Suite struct SupervisorFDWatcherTests {
    static func makePipe() -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        precondition(cberth_output_pipe(&fds) == 0)
        return (fds[0], fds[1])
    }

    @Test(.timeLimit(.minutes(1))) func readableResumesWhenDataArrives() async throws {
        let (readEnd, writeEnd) = Self.makePipe()
        defer {
            close(readEnd)
            close(writeEnd)
        }
        let watcher = FDWatcher.shared
        async let woke: Void = watcher.readable(readEnd)
        var byte: UInt8 = 7
        try await Task.sleep(for: .milliseconds(20))
        #expect(write(writeEnd, &byte, 1) == 1)
        await woke
        #expect(read(readEnd, &byte, 1) == 1)
    }

    @Test(.timeLimit(.minutes(1))) func timersFireInDeadlineOrderAndCancelledOnesDoNot() async throws {
        let watcher = FDWatcher()
        let fired = Mutex<[Int]>([])
        let started = cberth_now_monotonic_usec()
        watcher.after(.milliseconds(60)) { fired.withLock { $0.append(3) } }
        watcher.after(.milliseconds(20)) { fired.withLock { $0.append(1) } }
        let cancelled = watcher.after(.milliseconds(30)) { fired.withLock { $0.append(99) } }
        watcher.after(.milliseconds(40)) { fired.withLock { $0.append(2) } }
        watcher.after(.zero) { fired.withLock { $0.append(0) } }
        watcher.cancel(cancelled)
        await watcher.sleep(for: .milliseconds(80))
        #expect(cberth_now_monotonic_usec() - started >= 80_000)
        #expect(await SupervisorTestSupport.eventually { fired.withLock { $0.count } == 4 })
        #expect(fired.withLock { $0 } == [0, 1, 2, 3])
    }

    @Test(.timeLimit(.minutes(1))) func workRunsOnTheEpollThread() async {
        let watcher = FDWatcher.shared
        let onThread = await withCheckedContinuation { continuation in
            watcher.perform { continuation.resume(returning: watcher.isCurrentThread) }
        }
        #expect(onThread)
        #expect(!watcher.isCurrentThread)
    }

    @Test(.timeLimit(.minutes(1))) func cancellingAWaitReturnsEarly() async {
        let (readEnd, writeEnd) = Self.makePipe()
        defer {
            close(readEnd)
            close(writeEnd)
        }
        let task = Task { await FDWatcher.shared.wait(fd: readEnd) }
        try? await Task.sleep(for: .milliseconds(10))
        task.cancel()
        #expect(await task.value == [])
    }
}
