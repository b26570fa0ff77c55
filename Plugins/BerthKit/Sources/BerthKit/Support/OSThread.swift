import CBerthShim
import Glibc
import Synchronization

/// A dedicated OS thread for blocking loops (the bus loop, ALSA capture, epoll), outside the cooperative pool.
public enum OSThread {
    private final class Body {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }

    /// Starts a detached thread running `body`. `name` (at most 15 bytes) shows in `ps -L` and /proc.
    @discardableResult
    public static func start(name: String, _ body: @escaping @Sendable () -> Void) -> pthread_t {
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
        precondition(r == 0, "pthread_create failed: \(systemErrorText(r))")
        pthread_detach(thread)
        return thread
    }
}

extension OSThread {
    /// Runs blocking `body` (fsync, a big read, a child's wait) on a thread of its own and hands its result back to
    /// async code, so the cooperative pool never blocks on it.
    public static func run<T: Sendable>(name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            start(name: name) { continuation.resume(with: Result { try body() }) }
        }
    }
}

/// A serial executor on a dedicated thread, for an actor whose work blocks (SQLite, file writes, fsync, hashing):
///
///     actor Engine {
///         private let executor = ThreadExecutor(name: "berth-engine")
///         nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
///     }
///
/// The actor keeps its semantics (one job at a time, in order) and none of its work runs on the cooperative
/// pool. The thread lives as long as the process: use one per long-lived component.
public final class ThreadExecutor: SerialExecutor, @unchecked Sendable {
    // `jobs` is guarded by its mutex; the eventfd wakes the thread (its counter makes a missed wake-up impossible).
    private let jobs = Mutex<[UnownedJob]>([])
    private let wakeFD: Int32
    public let name: String

    public init(name: String) {
        self.name = name
        wakeFD = eventfd(0, Int32(EFD_CLOEXEC))
        precondition(wakeFD >= 0, "eventfd failed: \(systemErrorText(errno))")
        OSThread.start(name: name) { [self] in run() }
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        jobs.withLock { $0.append(job) }
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor { UnownedSerialExecutor(ordinary: self) }

    private func run() {
        let executor = asUnownedSerialExecutor()
        while true {
            let batch = jobs.withLock { queued -> [UnownedJob] in
                defer { queued.removeAll(keepingCapacity: true) }
                return queued
            }
            if batch.isEmpty {
                var count: UInt64 = 0
                _ = read(wakeFD, &count, 8)
                continue
            }
            for job in batch { job.runSynchronously(on: executor) }
        }
    }
}
