import CBerthShim
import Glibc

extension FDWatcher {
    func startThread() {
        // The loop never returns, so the thread keeps the watcher alive. Without it nothing supervised could run:
        // one is made per process (and per test watcher), at start, so this cannot be reached by input.
        let thread: pthread_t
        do {
            thread = try OSThread.start(name: "berth-epoll") { [self] in run() }
        } catch {
            fatalError("FDWatcher: \(BerthError.wrapping(error).message)")
        }
        state.withLock { $0.thread = thread }
    }

    /// The epoll loop. Never returns.
    func run() {
        var tokens = [UInt64](repeating: 0, count: 64)
        var events = [UInt32](repeating: 0, count: 64)
        while true {
            let count = cberth_epoll_wait(epollFD, &tokens, &events, 64, -1)
            if count < 0 {
                precondition(errno == EINTR, "FDWatcher: epoll_wait: \(systemErrorText(errno))")
                continue
            }
            for index in 0..<Int(count) {
                switch tokens[index] {
                case Self.wakeToken: drain(wakeFD)
                case Self.timerToken: drain(timerFD)
                default:
                    let handler = state.withLock { $0.handlers[tokens[index]] }
                    handler?(Events(rawValue: events[index]))
                }
            }
            runQueue()
            runTimers()
        }
    }

    private func drain(_ fd: Int32) {
        var value: UInt64 = 0
        _ = read(fd, &value, 8)
    }

    private func runQueue() {
        while true {
            let work = state.withLock { state -> [@Sendable () -> Void] in
                defer { state.queue.removeAll(keepingCapacity: true) }
                return state.queue
            }
            if work.isEmpty { return }
            for item in work { item() }
        }
    }

    private func runTimers() {
        while true {
            let now = cberth_now_monotonic_usec()
            let due = state.withLock { state -> (@Sendable () -> Void)? in
                if let handler = state.timers.popDue(now: now) { return handler }
                if state.armedDeadline != 0 && state.armedDeadline <= now { state.armedDeadline = 0 }
                armTimer(&state)
                return nil
            }
            guard let due else { return }
            due()
        }
    }
}

/// Timers by deadline: a binary min-heap of (deadline, id) with lazy deletion; the handlers live in a dictionary,
/// so cancelling is a dictionary removal and the stale heap entry is skipped when it surfaces.
struct TimerQueue {
    private var heap: [(deadline: UInt64, id: UInt64)] = []
    private var handlers: [UInt64: @Sendable () -> Void] = [:]

    var earliestDeadline: UInt64? {
        mutating get {
            dropCancelled()
            return heap.first?.deadline
        }
    }

    mutating func insert(id: UInt64, deadline: UInt64, handler: @escaping @Sendable () -> Void) {
        handlers[id] = handler
        heap.append((deadline, id))
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if heap[parent].deadline <= heap[child].deadline { break }
            heap.swapAt(parent, child)
            child = parent
        }
    }

    mutating func remove(id: UInt64) {
        handlers.removeValue(forKey: id)
    }

    /// The handler of the earliest timer due at `now`, removed; nil when none is due.
    mutating func popDue(now: UInt64) -> (@Sendable () -> Void)? {
        dropCancelled()
        guard let first = heap.first, first.deadline <= now else { return nil }
        popRoot()
        return handlers.removeValue(forKey: first.id)
    }

    private mutating func dropCancelled() {
        while let first = heap.first, handlers[first.id] == nil { popRoot() }
    }

    private mutating func popRoot() {
        heap.swapAt(0, heap.count - 1)
        heap.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count && heap[left].deadline < heap[smallest].deadline { smallest = left }
            if right < heap.count && heap[right].deadline < heap[smallest].deadline { smallest = right }
            if smallest == parent { return }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
