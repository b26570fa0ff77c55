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
            forwardToSignalThread()
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

/// The signal thread, for the forwarding handler below.
nonisolated(unsafe) private var signalThreadHandle = pthread_t()

/// libdispatch parks the main thread of an async `main` in `sigsuspend` with an EMPTY mask, so process-directed
/// signals reach it despite `blockDaemonSignals`, and their default action killed the daemon (SIGTERM ended it
/// with 143, SIGUSR2 with "User defined signal 2"). A handler that re-sends the signal to the signal thread, where
/// it is blocked and `sigwaitinfo` takes it, makes every signal end up there. `pthread_kill` is async-signal-safe.
private func forwardToSignalThread() {
    signalThreadHandle = pthread_self()
    for signal in SignalThread.handled {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { received in _ = pthread_kill(signalThreadHandle, received) }
        sigemptyset(&action.sa_mask)
        action.sa_flags = SA_RESTART
        sigaction(signal, &action, nil)
    }
}
