import BerthKit
import CBerthdEarly
import Glibc
import Synchronization

/// The daemon's signals, received by one thread with `sigwaitinfo`: they are blocked in every thread (by a C
/// constructor in CBerthdEarly that runs before main, before any thread exists), so no handler ever runs in
/// async-signal context.
enum SignalThread {
    static let handled: [Int32] = [SIGTERM, SIGINT, SIGHUP, SIGUSR2]

    static func blockDaemonSignals() {
        precondition(cberthd_signals_blocked() == 1, "CBerthdEarly did not block the daemon's signals")
        var set = sigset_t()
        sigemptyset(&set)
        for signal in handled { sigaddset(&set, signal) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
        // A closed pipe must be an EPIPE error, never a dead daemon.
        signal(SIGPIPE, SIG_IGN)
    }

    private static let state = Mutex<(handler: (@Sendable (Int32) -> Void)?, pending: [Int32])>((nil, []))

    /// Routes signals to `handler` from now on (signals that arrived before are delivered first).
    static func setHandler(_ handler: @escaping @Sendable (Int32) -> Void) {
        let pending = state.withLock { s -> [Int32] in
            s.handler = handler
            defer { s.pending.removeAll() }
            return s.pending
        }
        for signal in pending { handler(signal) }
    }

    /// The main thread's loop: waits for the daemon's signals for ever and hands each to the handler.
    static func waitForSignals() -> Never {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in handled { sigaddset(&set, signal) }
        while true {
            let signal = sigwaitinfo(&set, nil)
            guard signal > 0 else { continue }
            let handler = state.withLock { s -> (@Sendable (Int32) -> Void)? in
                if s.handler == nil { s.pending.append(signal) }
                return s.handler
            }
            handler?(signal)
        }
    }
}
