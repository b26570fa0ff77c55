import BerthKit
import Glibc

/// The daemon's signals, received by one thread with `sigwaitinfo`: they are blocked in every thread (from the
/// first line of main, before any thread exists), so no handler ever runs in async-signal context.
enum SignalThread {
    static let handled: [Int32] = [SIGTERM, SIGINT, SIGHUP, SIGUSR2]

    static func blockDaemonSignals() {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in handled { sigaddset(&set, signal) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
        // A closed pipe must be an EPIPE error, never a dead daemon.
        signal(SIGPIPE, SIG_IGN)
    }

    /// Starts the thread; `handler` runs on it for each signal (keep it quick: hand work to a task).
    static func start(_ handler: @escaping @Sendable (Int32) -> Void) {
        OSThread.start(name: "berth-signals") {
            var set = sigset_t()
            sigemptyset(&set)
            for signal in handled { sigaddset(&set, signal) }
            while true {
                let signal = sigwaitinfo(&set, nil)
                if signal > 0 { handler(signal) }
            }
        }
    }
}
