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
public final class Job: Sendable {
    public let id: UInt32
    public let path: String
    public let plugin: String
    public let operation: String
    let object: BusObject
    private let registry: JobRegistry
    private let state = Mutex<(result: JobResult?, task: Task<Void, Never>?, waiters: [CheckedContinuation<JobResult, Never>])>(
        (nil, nil, []))

    init(id: UInt32, path: String, plugin: String, operation: String, object: BusObject, registry: JobRegistry) {
        self.id = id
        self.path = path
        self.plugin = plugin
        self.operation = operation
        self.object = object
        self.registry = registry
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

    /// Ends the job once; later calls are ignored.
    public func finish(_ result: JobResult) {
        let waiters: [CheckedContinuation<JobResult, Never>]? = state.withLock { s in
            guard s.result == nil else { return nil }
            s.result = result
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

    /// Cancels the job: its task is cancelled and the job ends `canceled` at once.
    public func cancel() {
        let task = state.withLock { $0.task }
        task?.cancel()
        finish(.canceled)
    }

    func attach(_ task: Task<Void, Never>) {
        state.withLock { $0.task = task }
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
