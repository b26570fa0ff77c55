import BerthKit
import Foundation
import Synchronization

/// Cancels the task that armed it when a time limit passes first (see `TestEnvironment.with`). Swift Testing's own
/// `.timeLimit` counts in whole minutes and is set test by test; this one covers every world.
///
/// The timer is BerthKit's epoll timer, not a `Task.sleep`: it fires even when every thread of the cooperative pool
/// is taken. The task is cancelled through its `UnsafeCurrentTask`, which is valid while the task runs: `with`
/// disarms the watchdog before its task returns, and the lock makes the cancel and the disarm exclude each other.
public final class TaskWatchdog: Sendable {
    private struct Armed: @unchecked Sendable {
        var task: UnsafeCurrentTask?
        var token: FDWatcher.Token?
        var fired = false
    }
    private let state = Mutex(Armed())

    /// Arms a watchdog for the calling task: after `limit`, the task is cancelled (and `fired` is true).
    public static func arm(after limit: Duration) -> TaskWatchdog {
        let watchdog = TaskWatchdog()
        withUnsafeCurrentTask { task in watchdog.state.withLock { $0.task = task } }
        let token = FDWatcher.shared.after(limit) { [watchdog] in
            watchdog.state.withLock { armed in
                guard let task = armed.task else { return }
                armed.task = nil
                armed.fired = true
                task.cancel()
            }
        }
        watchdog.state.withLock { $0.token = token }
        return watchdog
    }

    /// True when the limit passed and the task was cancelled.
    public var fired: Bool { state.withLock { $0.fired } }

    /// Disarms: the task is never cancelled after this returns.
    public func cancel() {
        let token = state.withLock { armed -> FDWatcher.Token? in
            armed.task = nil
            return armed.token
        }
        if let token { FDWatcher.shared.cancel(token) }
    }
}
