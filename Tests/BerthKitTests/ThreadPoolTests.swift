import BerthTestSupport
import Foundation
import Glibc
import Synchronization
import Testing

@testable import BerthKit

/// Threads of this process whose name (`/proc/self/task/*/comm`) is `name`.
func threadsNamed(_ name: String) -> Int {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
    return tasks.filter { task in
        let comm = (try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8)) ?? ""
        return comm.trimmingCharacters(in: .newlines) == name
    }.count
}

/// A value shared by test tasks and threads.
final class Shared<T: Sendable>: Sendable {
    private let value: Mutex<T>
    init(_ value: T) { self.value = Mutex(value) }
    func with<R: Sendable>(_ body: (inout T) -> R) -> R { value.withLock { body(&$0) } }
    var get: T { value.withLock { $0 } }
}

/// Blocking calls share a bounded pool of worker threads that exit when idle; a stopped ThreadExecutor leaves no
/// thread behind.
@Suite struct ThreadPoolTests {
    @Test(.timeLimit(.minutes(1))) func blockingCallsShareABoundedPool() async throws {
        let peak = Shared(0)
        let name = "berth-t-bound"
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<40 {
                group.addTask {
                    try await OSThread.run(name: name) {
                        let now = threadsNamed(name)
                        peak.with { $0 = max($0, now) }
                        usleep(30_000)
                    }
                }
            }
            try await group.waitForAll()
        }
        let most = peak.get
        #expect(most >= 1)
        #expect(most <= WorkerPool.shared.maximum, "\(most) threads ran 40 blocking calls at once")
        #expect(WorkerPool.shared.threadCount <= WorkerPool.shared.maximum)
    }

    @Test(.timeLimit(.minutes(1))) func idleWorkersExitAndWorkStillRunsInOrderOfArrival() async throws {
        let pool = WorkerPool(name: "berth-t-idle", maximum: 3, idleTimeout: .milliseconds(200))
        let done = Shared<[Int]>([])
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<12 {
                group.addTask {
                    try await pool.run(name: "berth-t-idle-w") {
                        usleep(5_000)
                        done.with { $0.append(i) }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(done.get.sorted() == Array(0..<12))
        #expect(pool.threadCount <= 3)
        try await waitUntil("idle workers exit", timeout: .seconds(5)) {
            pool.threadCount == 0 && threadsNamed("berth-t-idle") == 0 && threadsNamed("berth-t-idle-w") == 0
        }
        // A pool that shrank to nothing starts a worker again.
        #expect(try await pool.run(name: "berth-t-again") { 42 } == 42)
        await #expect(throws: BerthError.self) {
            try await pool.run(name: "berth-t-throw") { () throws -> Int in throw BerthError.failed("no") }
        }
    }

    actor Worker {
        let executor = ThreadExecutor(name: "berth-t-exec")
        nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
        var count = 0
        func work() -> String {
            count += 1
            return currentThreadName()
        }
        nonisolated func stop() { executor.stop() }
    }

    @Test(.timeLimit(.minutes(1))) func aStoppedExecutorLeavesNoThreadBehind() async throws {
        let worker = Worker()
        #expect(await worker.work() == "berth-t-exec")
        #expect(threadsNamed("berth-t-exec") == 1)
        worker.stop()
        try await waitUntil("the executor's thread exits", timeout: .seconds(5)) { threadsNamed("berth-t-exec") == 0 }
        // Work that still arrives runs (on a thread started for it), which exits again afterwards.
        #expect(await worker.work() == "berth-t-exec")
        #expect(await worker.count == 2)
        try await waitUntil("the executor's thread exits again", timeout: .seconds(5)) {
            threadsNamed("berth-t-exec") == 0
        }
    }
}
