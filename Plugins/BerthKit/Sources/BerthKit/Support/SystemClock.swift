import CBerthShim
import Glibc

extension Duration {
    /// Whole microseconds, never negative, saturating for huge durations: how a `Duration` meets the clocks below.
    public var microsecondsClamped: UInt64 {
        let (seconds, attoseconds) = components
        if seconds < 0 { return 0 }
        if seconds > 1_000_000_000_000 { return UInt64.max / 2 }
        return UInt64(seconds) * 1_000_000 + UInt64(max(attoseconds, 0) / 1_000_000_000_000)
    }
}

/// The clocks berth reads, in microseconds: the one place the daemon, BerthKit and every plugin take time from.
public enum SystemClock {
    /// Wall-clock time since the epoch (the `...USec` properties, deployment and recording stamps).
    public static func wallUSec() -> UInt64 { cberth_now_realtime_usec() }

    /// Time that only moves forward (timeouts, settling, pacing, measuring).
    public static func monotonicUSec() -> UInt64 { cberth_now_monotonic_usec() }

    /// CPU time the calling thread has used.
    public static func threadCPUUSec() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
    }

    /// Blocks the calling thread for `usec` (nothing when it is 0 or less). Only for threads berth owns (capture,
    /// workers), never the cooperative pool.
    public static func sleepOnThread(usec: Int64) {
        guard usec > 0 else { return }
        var request = timespec(tv_sec: Int(usec / 1_000_000), tv_nsec: Int(usec % 1_000_000) * 1000)
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }
}
