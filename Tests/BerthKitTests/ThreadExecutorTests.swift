import BerthKit
import BerthTestSupport
import Glibc
import Testing

/// An actor on a ThreadExecutor runs every job on its own thread, one at a time and in order, including the
/// continuations after it awaited something elsewhere.
@Suite struct ThreadExecutorTests {
    actor Counter {
        private let executor = ThreadExecutor(name: "berth-test-exec")
        nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
        var values: [Int] = []
        var threads: Set<String> = []
        var inside = 0
        var overlapped = false

        func add(_ value: Int) {
            inside += 1
            if inside > 1 { overlapped = true }
            threads.insert(currentThreadName())
            usleep(50)  // blocking on purpose: this thread is not the cooperative pool's
            values.append(value)
            inside -= 1
        }

        func addAfterAwaiting(_ value: Int) async {
            try? await Task.sleep(for: .milliseconds(1))
            add(value)
        }
    }

    @Test func jobsRunOnTheThreadOneAtATime() async throws {
        let counter = Counter()
        await withTaskGroup(of: Void.self) { group in
            for i in 0..<400 { group.addTask { await counter.add(i) } }
            for i in 400..<450 { group.addTask { await counter.addAfterAwaiting(i) } }
        }
        #expect(await counter.threads == ["berth-test-exec"])
        #expect(await counter.overlapped == false)
        #expect(await counter.values.sorted() == Array(0..<450))
        // Calls from one task arrive in order.
        let ordered = Counter()
        for i in 0..<100 { await ordered.add(i) }
        #expect(await ordered.values == Array(0..<100))
    }

    @Test func oneShotThreadReturnsAndThrows() async throws {
        let name = try await OSThread.run(name: "berth-test-once") { currentThreadName() }
        #expect(name == "berth-test-once")
        await #expect(throws: BerthError.self) {
            try await OSThread.run(name: "berth-test-once") { () throws -> Int in throw BerthError.failed("no") }
        }
    }
}
