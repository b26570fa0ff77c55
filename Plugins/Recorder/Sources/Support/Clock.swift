import Glibc

/// Clocks in microseconds, and sleeping for code that owns its thread.
enum Clock {
    /// Wall-clock time since the epoch (what recordings and deployments are stamped with).
    static func wallUSec() -> Int64 { read(CLOCK_REALTIME) }
    /// Time that only moves forward (for pacing and measuring).
    static func monotonicUSec() -> Int64 { read(CLOCK_MONOTONIC) }
    /// CPU time used by the calling thread.
    static func threadCPUUSec() -> Int64 { read(CLOCK_THREAD_CPUTIME_ID) }

    private static func read(_ clock: clockid_t) -> Int64 {
        var ts = timespec()
        clock_gettime(clock, &ts)
        return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000
    }

    /// Blocks the calling thread. Only for dedicated threads, never the cooperative pool.
    static func sleepOnThread(usec: Int64) {
        guard usec > 0 else { return }
        var request = timespec(tv_sec: Int(usec / 1_000_000), tv_nsec: Int(usec % 1_000_000) * 1000)
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }
}
