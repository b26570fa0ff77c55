import Glibc

/// A value guarded by a pthread mutex with a condition variable: dedicated threads wait on it with a deadline
/// (the delivery workers, a link waiting for its acknowledgements); others change it and wake them. Never used from
/// the cooperative pool for waiting.
final class Condition<Value>: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var cond = pthread_cond_t()
    private var value: Value

    init(_ value: Value) {
        self.value = value
        pthread_mutex_init(&mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(&cond, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(&cond)
        pthread_mutex_destroy(&mutex)
    }

    /// Changes the value and wakes every waiter.
    @discardableResult
    func update<T>(_ body: (inout Value) -> T) -> T {
        pthread_mutex_lock(&mutex)
        defer {
            pthread_cond_broadcast(&cond)
            pthread_mutex_unlock(&mutex)
        }
        return body(&value)
    }

    func read<T>(_ body: (Value) -> T) -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return body(value)
    }

    /// Waits until `ready` holds or `timeoutUSec` passed; then runs `body` on the value (still locked) and returns
    /// its result with whether `ready` held.
    func wait<T>(timeoutUSec: UInt64, until ready: (Value) -> Bool, _ body: (inout Value) -> T) -> (Bool, T) {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let total = UInt64(now.tv_nsec) + (timeoutUSec % 1_000_000) * 1000
        var deadline = timespec(
            tv_sec: now.tv_sec + Int(timeoutUSec / 1_000_000) + Int(total / 1_000_000_000),
            tv_nsec: Int(total % 1_000_000_000))
        while !ready(value) {
            if pthread_cond_timedwait(&cond, &mutex, &deadline) == ETIMEDOUT { break }
        }
        let ok = ready(value)
        return (ok, body(&value))
    }
}
