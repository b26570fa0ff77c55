import Synchronization

extension FDWatcher {
    /// Suspends until `fd` has any of `events` (or an error or hangup), without blocking a thread. Returns the
    /// events seen, or an empty set when the task was cancelled first.
    @discardableResult
    public func wait(fd: Int32, for events: Events = .readable) async -> Events {
        let once = OneShot()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Events, Never>) in
                once.arm(continuation)
                do {
                    let token = try watch(fd: fd, events: events) { seen in once.resume(seen) }
                    once.setCleanup { self.unwatch(token, fd: fd) }
                } catch {
                    once.resume([.error])
                }
            }
        } onCancel: {
            once.resume([])
        }
    }

    /// Suspends until `fd` is readable (see `wait(fd:for:)`).
    public func readable(_ fd: Int32) async {
        await wait(fd: fd, for: .readable)
    }

    /// Suspends for `delay` on this watcher's timers (no thread blocked).
    public func sleep(for delay: Duration) async {
        let once = OneShot()
        await withTaskCancellationHandler {
            _ = await withCheckedContinuation { (continuation: CheckedContinuation<Events, Never>) in
                once.arm(continuation)
                let token = after(delay) { once.resume([]) }
                once.setCleanup { self.cancel(token) }
            }
        } onCancel: {
            once.resume([])
        }
    }
}

/// A continuation resumed exactly once, whoever comes first (the fd, the timer or cancellation), plus the cleanup
/// that undoes the watch. Resuming before `arm` is remembered and delivered at `arm`.
private final class OneShot: Sendable {
    private struct State {
        var continuation: CheckedContinuation<FDWatcher.Events, Never>?
        var result: FDWatcher.Events?
        var cleanup: (@Sendable () -> Void)?
        var done = false
    }
    private let state = Mutex(State())

    func arm(_ continuation: CheckedContinuation<FDWatcher.Events, Never>) {
        let early = state.withLock { state -> FDWatcher.Events? in
            if let result = state.result {
                state.done = true
                return result
            }
            state.continuation = continuation
            return nil
        }
        if let early { continuation.resume(returning: early) }
    }

    func setCleanup(_ cleanup: @escaping @Sendable () -> Void) {
        let runNow = state.withLock { state -> Bool in
            if state.done || state.result != nil { return true }
            state.cleanup = cleanup
            return false
        }
        if runNow { cleanup() }
    }

    func resume(_ events: FDWatcher.Events) {
        let (continuation, cleanup) = state.withLock { state -> (CheckedContinuation<FDWatcher.Events, Never>?, (@Sendable () -> Void)?) in
            if state.done || state.result != nil { return (nil, nil) }
            state.result = events
            guard let continuation = state.continuation else { return (nil, nil) }
            state.done = true
            defer { state.continuation = nil; state.cleanup = nil }
            return (continuation, state.cleanup)
        }
        cleanup?()
        continuation?.resume(returning: events)
    }
}
