import CBerthShim
import Glibc
import Synchronization

/// Threads outside the cooperative pool: `start` makes a dedicated thread for a blocking loop that lives long (the
/// bus loop, ALSA capture, epoll); `run` hands one blocking call (an fsync, a big read, SQLite) to a small bounded
/// pool of worker threads (`WorkerPool.shared`) and awaits its result.
public enum OSThread {
    private final class Body {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }

    /// Starts a detached thread running `body`. `name` (at most 15 bytes) shows in `ps -L` and /proc. Throws
    /// (`Failed`, naming the thread and the reason) when the system refuses a new thread; `body` then never runs.
    @discardableResult
    public static func start(name: String, _ body: @escaping @Sendable () -> Void) throws -> pthread_t {
        let threadName = String(decoding: name.utf8.prefix(15), as: UTF8.self)
        let box = Unmanaged.passRetained(Body({
            cberth_set_thread_name(threadName)
            body()
        })).toOpaque()
        var thread = pthread_t()
        let r = pthread_create(
            &thread, nil,
            { raw in
                let body = Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue()
                body.run()
                return nil
            }, box)
        guard r == 0 else {
            Unmanaged<Body>.fromOpaque(box).release()
            throw BerthError.failed("cannot start the thread \"\(threadName)\": pthread_create: \(systemErrorText(r))")
        }
        pthread_detach(thread)
        return thread
    }
}

extension OSThread {
    /// Runs blocking `body` (fsync, a big read, a child's wait) on a worker of `WorkerPool.shared` and hands its
    /// result back to async code, so the cooperative pool never blocks on it. The worker carries `name` while it
    /// runs `body`. Throws what `body` throws, or `Failed` when no worker can be started.
    public static func run<T: Sendable>(name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await WorkerPool.shared.run(name: name, body)
    }
}

/// A bounded pool of worker threads for short blocking calls. Threads are started on demand up to `maximum` (work
/// beyond that waits its turn, in order), and a thread idle for `idleTimeout` exits, so an idle process keeps none.
/// A worker is renamed to the name of the work it runs (`/proc/self/task/*/comm`) and back to the pool's name when
/// idle.
public final class WorkerPool: @unchecked Sendable {
    /// The pool behind `OSThread.run`: up to 8 threads, each exiting after 5 s without work.
    public static let shared = WorkerPool(name: "berth-worker", maximum: 8, idleTimeout: .seconds(5))

    private struct Item {
        let id: UInt64
        let name: String
        let work: @Sendable () -> Void
    }

    public let name: String
    public let maximum: Int
    public let idleTimeout: Duration
    // Everything below is guarded by `mutex`; `condition` wakes idle workers (CLOCK_MONOTONIC for the timeout).
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private var queue: [Item] = []
    private var head = 0
    private var threads = 0
    private var idle = 0
    private var nextID: UInt64 = 0

    public init(name: String, maximum: Int, idleTimeout: Duration) {
        self.name = String(decoding: name.utf8.prefix(15), as: UTF8.self)
        self.maximum = max(1, maximum)
        self.idleTimeout = idleTimeout
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        condition = .allocate(capacity: 1)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        // Only reached when no worker is left: each one holds the pool while it runs.
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Threads the pool has now (busy or idle).
    public var threadCount: Int { locked { threads } }

    /// Runs `body` on a worker and returns its result to the awaiting task.
    public func run<T: Sendable>(name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            do {
                try submit(name: name) { continuation.resume(with: Result { try body() }) }
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }

    /// Queues `work` for a worker. Throws only when no worker exists and none can be started (then `work` never
    /// runs); while any worker lives the work waits for it instead.
    public func submit(name: String, _ work: @escaping @Sendable () -> Void) throws {
        let (id, spawn) = locked { () -> (UInt64, Bool) in
            nextID += 1
            queue.append(Item(id: nextID, name: String(decoding: name.utf8.prefix(15), as: UTF8.self), work: work))
            let pending = queue.count - head
            if pending <= idle {
                pthread_cond_signal(condition)
                return (nextID, false)
            }
            guard threads < maximum else { return (nextID, false) }
            threads += 1
            return (nextID, true)
        }
        guard spawn else { return }
        do {
            try OSThread.start(name: self.name) { [self] in workerLoop() }
        } catch {
            let dropped = locked { () -> Bool in
                threads -= 1
                // Another worker will get to the work; with none, it cannot run: take it back (unless a worker
                // took it meanwhile).
                guard threads == 0, let index = queue[head...].firstIndex(where: { $0.id == id }) else { return false }
                queue.remove(at: index)
                return true
            }
            if dropped { throw error }
            poolLogger.error("\(BerthError.wrapping(error).message); the work waits for a running worker")
        }
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    private func workerLoop() {
        pthread_mutex_lock(mutex)
        while true {
            if head < queue.count {
                let item = queue[head]
                head += 1
                if head >= 64 && head * 2 >= queue.count {
                    queue.removeFirst(head)
                    head = 0
                }
                pthread_mutex_unlock(mutex)
                cberth_set_thread_name(item.name)
                item.work()
                cberth_set_thread_name(name)
                pthread_mutex_lock(mutex)
                continue
            }
            idle += 1
            let until = SystemClock.monotonicUSec() + idleTimeout.microsecondsClamped
            var deadline = timespec(tv_sec: Int(until / 1_000_000), tv_nsec: Int(until % 1_000_000) * 1000)
            let r = pthread_cond_timedwait(condition, mutex, &deadline)
            idle -= 1
            if r == ETIMEDOUT && head >= queue.count {
                threads -= 1
                queue.removeAll()
                head = 0
                pthread_mutex_unlock(mutex)
                return
            }
        }
    }
}

private let poolLogger = Logger(label: "berth.threads")

/// A serial executor on a dedicated thread, for an actor whose work blocks (SQLite, file writes, fsync, hashing):
///
///     actor Engine {
///         private let executor = ThreadExecutor(name: "berth-engine")
///         nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
///     }
///
/// The actor keeps its semantics (one job at a time, in order) and none of its work runs on the cooperative
/// pool. The thread starts with the first job. `stop()` (when its owner stops) lets the thread exit once its
/// queue is empty; work that still arrives after that runs on a thread started for it, which exits again when
/// the queue is empty, so a stopped executor never leaves work unrun and keeps no thread while idle.
public final class ThreadExecutor: SerialExecutor, @unchecked Sendable {
    private struct State {
        var jobs: [UnownedJob] = []
        var threadRunning = false
        var stopped = false
    }
    // `state` is guarded by its mutex; the eventfd wakes the thread (its counter makes a missed wake-up impossible).
    private let state = Mutex(State())
    private let wakeFD: Int32
    public let name: String

    public init(name: String) {
        self.name = name
        wakeFD = eventfd(0, Int32(EFD_CLOEXEC))
        precondition(wakeFD >= 0, "eventfd failed: \(systemErrorText(errno))")
    }

    deinit { close(wakeFD) }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let startThread = state.withLock { s -> Bool in
            s.jobs.append(job)
            guard !s.threadRunning else { return false }
            s.threadRunning = true
            return true
        }
        if startThread {
            startLoop()
        } else {
            wake()
        }
    }

    /// Lets the thread exit once every queued job has run. Safe to call more than once, from any thread (also
    /// from a job on this executor).
    public func stop() {
        state.withLock { $0.stopped = true }
        wake()
    }

    /// Whether the executor's thread runs now.
    public var isThreadRunning: Bool { state.withLock { $0.threadRunning } }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor { UnownedSerialExecutor(ordinary: self) }

    private func wake() {
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    private func startLoop() {
        do {
            try OSThread.start(name: name) { [self] in run() }
        } catch {
            // The jobs stay queued; the next enqueue tries again.
            state.withLock { $0.threadRunning = false }
            poolLogger.error("executor \"\(name)\": \(BerthError.wrapping(error).message); its work waits")
        }
    }

    private func run() {
        let executor = asUnownedSerialExecutor()
        while true {
            let batch = state.withLock { s -> [UnownedJob]? in
                if s.jobs.isEmpty && s.stopped {
                    s.threadRunning = false
                    return nil
                }
                defer { s.jobs.removeAll(keepingCapacity: true) }
                return s.jobs
            }
            guard let batch else { return }
            if batch.isEmpty {
                var count: UInt64 = 0
                _ = read(wakeFD, &count, 8)
                continue
            }
            for job in batch { job.runSynchronously(on: executor) }
        }
    }
}
