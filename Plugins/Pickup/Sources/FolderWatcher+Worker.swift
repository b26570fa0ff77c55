import BerthKit
import Synchronization

/// Runs work one item at a time, in the order it was submitted, on a thread that exists only while there is work:
/// an idle or stopped watcher holds no thread. The queue's lock is held only to add or take items, never while an
/// item runs, so whoever submits (the epoll thread) never waits behind the work.
final class SerialWorker: Sendable {
    private let queue = Mutex<(items: [@Sendable () -> Void], running: Bool)>(([], false))
    let name: String

    init(name: String) { self.name = name }

    func submit(_ work: @escaping @Sendable () -> Void) {
        let startThread = queue.withLock { queue -> Bool in
            queue.items.append(work)
            guard !queue.running else { return false }
            queue.running = true
            return true
        }
        guard startThread else { return }
        do {
            try OSThread.start(name: name) { [self] in drain() }
        } catch {
            // The work stays queued; the next submit tries to start the thread again.
            queue.withLock { $0.running = false }
            Logger(label: "berth.pickup").error("\(BerthError.wrapping(error).message); pickup's watcher work waits")
        }
    }

    /// Runs `work` on the worker and returns its result (the caller's task waits; no thread of the pool does).
    func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in submit { continuation.resume(returning: work()) } }
    }

    private func drain() {
        while true {
            let batch = queue.withLock { queue -> [@Sendable () -> Void] in
                if queue.items.isEmpty { queue.running = false }
                defer { queue.items.removeAll(keepingCapacity: true) }
                return queue.items
            }
            if batch.isEmpty { return }
            for work in batch { work() }
        }
    }
}
