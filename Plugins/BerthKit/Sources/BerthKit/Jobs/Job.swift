import CBerthShim
import Synchronization

/// How a job ended; the strings are the `result` of `JobRemoved`.
public enum JobResult: Sendable, Equatable {
    case done
    case failed(BerthError)
    case canceled
    case timeout(String)

    public var name: String {
        switch self {
        case .done: "done"
        case .failed: "failed"
        case .canceled: "canceled"
        case .timeout: "timeout"
        }
    }

    /// The job's `State` once ended: running|done|failed|canceled (a timeout is a failure).
    public var stateName: String {
        switch self {
        case .done: "done"
        case .failed, .timeout: "failed"
        case .canceled: "canceled"
        }
    }
}

/// A long operation with an object on the bus (`/org/berth/Berth1/job/<n>`): methods that may take seconds reply
/// at once with `(u id, o path)` and finish through the job. State, Progress and the result are properties; `Log`
/// lines are signals. `JobNew`/`JobRemoved` are emitted on the Manager by the registry.
///
/// Lifetime: the registry holds a running job; a finished one is held only by its retention timer, then released
/// with its bus object (the object's Cancel handler reaches the job through a weak reference, and the task is
/// dropped when the job ends, so nothing keeps a finished job alive).
public final class Job: Sendable {
    public let id: UInt32
    public let path: String
    public let plugin: String
    public let operation: String
    let object: BusObject
    private let registry: JobRegistry
    /// Whether a task (`JobRegistry.start`) does the work: then a cancel reaches the task and the job ends when the
    /// task does; a job without one (`JobRegistry.create`) ends `canceled` at once.
    private let hasTask: Bool

    private struct State {
        var result: JobResult?
        var task: Task<Void, Never>?
        var cancelRequested = false
        var waiters: [CheckedContinuation<JobResult, Never>] = []
    }
    private let state = Mutex(State())

    init(
        id: UInt32, path: String, plugin: String, operation: String, object: BusObject, registry: JobRegistry,
        hasTask: Bool
    ) {
        self.id = id
        self.path = path
        self.plugin = plugin
        self.operation = operation
        self.object = object
        self.registry = registry
        self.hasTask = hasTask
    }

    /// The `(u, o)` reply of a method that started this job.
    public var reply: [DBusValue] { [.uint32(id), .objectPath(path)] }

    /// Sends one `Log` line (also written to the daemon log).
    public func log(_ message: String) {
        object.emit("Log", [.string(message)])
        registry.logger.info("job \(id) (\(plugin) \(operation)): \(message)")
    }

    /// Sets Progress (0...1).
    public func progress(_ fraction: Double) {
        object.set("Progress", .double(min(max(fraction, 0), 1)))
    }

    public var result: JobResult? { state.withLock { $0.result } }
    public var isFinished: Bool { result != nil }
    /// Whether `cancel()` was called while the job ran.
    public var isCancelRequested: Bool { state.withLock { $0.cancelRequested } }

    /// Ends the job once; later calls are ignored.
    public func finish(_ result: JobResult) {
        let waiters: [CheckedContinuation<JobResult, Never>]? = state.withLock { s in
            guard s.result == nil else { return nil }
            s.result = result
            s.task = nil
            defer { s.waiters.removeAll() }
            return s.waiters
        }
        guard let waiters else { return }
        var changes: [(String, DBusValue)] = [("State", .string(result.stateName)), ("Result", .string(result.name))]
        switch result {
        case .failed(let error):
            changes += [("ErrorName", .string(error.code.dbusName)), ("ErrorMessage", .string(error.message))]
        case .timeout(let message):
            changes += [("ErrorName", .string(BerthError.Code.timeout.dbusName)), ("ErrorMessage", .string(message))]
        case .canceled:
            changes += [("ErrorName", .string(BerthError.Code.cancelled.dbusName)),
                ("ErrorMessage", .string("job \(id) (\(plugin) \(operation)) was canceled"))]
        case .done:
            object.set("Progress", .double(1))
        }
        object.set(changes)
        for waiter in waiters { waiter.resume(returning: result) }
        registry.finished(self, result)
    }

    /// Waits for the result.
    public func wait() async -> JobResult {
        await withCheckedContinuation { continuation in
            let done: JobResult? = state.withLock { s in
                if let r = s.result { return r }
                s.waiters.append(continuation)
                return nil
            }
            if let done { continuation.resume(returning: done) }
        }
    }

    /// Cancels the job. A job run by a task: the task is cancelled (or, when it is not attached yet, cancelled as
    /// it is attached) and the job ends `canceled` when the work has stopped. A job without a task ends `canceled`
    /// at once.
    public func cancel() {
        let (task, finishNow) = state.withLock { s -> (Task<Void, Never>?, Bool) in
            guard s.result == nil else { return (nil, false) }
            s.cancelRequested = true
            return (s.task, !hasTask)
        }
        task?.cancel()
        if finishNow { finish(.canceled) }
    }

    /// Hands the job its task; a cancel that came first cancels it now. A task that already finished the job is
    /// not kept (it would keep the job alive).
    func attach(_ task: Task<Void, Never>) {
        let cancelNow = state.withLock { s -> Bool in
            guard s.result == nil else { return false }
            s.task = task
            return s.cancelRequested
        }
        if cancelNow { task.cancel() }
    }

    static func interface(cancel: @escaping @Sendable () -> Void, id: UInt32, plugin: String, operation: String)
        -> BusInterface
    {
        BusInterface(
            "org.berth.Berth1.Job",
            methods: [.sync("Cancel") { _ in cancel(); return [] }],
            properties: [
                BusProperty("Id", "u", initial: .uint32(id), change: .const),
                BusProperty("Plugin", "s", initial: .string(plugin), change: .const),
                BusProperty("Operation", "s", initial: .string(operation), change: .const),
                BusProperty("State", "s", initial: .string("running")),
                BusProperty("Progress", "d", initial: .double(0)),
                BusProperty("Result", "s", initial: .string("")),
                BusProperty("ErrorName", "s", initial: .string("")),
                BusProperty("ErrorMessage", "s", initial: .string("")),
                BusProperty("StartedUSec", "t", initial: .uint64(cberth_now_realtime_usec()), change: .const),
            ],
            signals: [BusSignal("Log", [BusArg("message", "s")])])
    }
}
