import Synchronization

/// Creates and tracks jobs, emits `JobNew`/`JobRemoved` on the Manager object and keeps its `Jobs` property.
/// A finished job's object stays on the bus for `retention` so late readers can still read the result.
public final class JobRegistry: Sendable {
    public static let managerInterface = "org.berth.Berth1.Manager"
    let connection: BusConnection
    let logger: Logger
    private let retention: Duration
    private let state = Mutex<(next: UInt32, running: [UInt32: Job], manager: BusObject?)>((1, [:], nil))

    public init(connection: BusConnection, logger: Logger, retention: Duration = .seconds(5)) {
        self.connection = connection
        self.logger = logger
        self.retention = retention
    }

    /// The Manager object that carries JobNew/JobRemoved and the Jobs property.
    public func attach(manager: BusObject) {
        state.withLock { $0.manager = manager }
    }

    /// Running jobs, oldest first.
    public var running: [Job] { state.withLock { $0.running.values.sorted { $0.id < $1.id } } }

    public func job(id: UInt32) -> Job? { state.withLock { $0.running[id] } }

    /// Creates a job and runs `body` in a task. The job ends `done` when body returns, `failed` with the error it
    /// throws, `timeout` with a `.timeout` error, and `canceled` when it was cancelled: then its task is cancelled
    /// and the job ends when body has returned or thrown, that is when the work has stopped (body must observe
    /// cancellation: `Task.checkCancellation`, cancellable waits, `withTaskCancellationHandler`). A `Cancel` that
    /// arrives before the task is attached cancels it as it is attached. Returns at once; reply with `job.reply`.
    @discardableResult
    public func start(
        plugin: String, operation: String, _ body: @escaping @Sendable (Job) async throws -> Void
    ) async throws -> Job {
        let job = try await create(plugin: plugin, operation: operation, hasTask: true)
        let task = Task {
            do {
                try await body(job)
                job.finish(job.isCancelRequested ? .canceled : .done)
            } catch {
                job.finish(Self.result(of: error, canceled: job.isCancelRequested || Task.isCancelled))
            }
        }
        job.attach(task)
        return job
    }

    static func result(of error: any Error, canceled: Bool) -> JobResult {
        if error is CancellationError || canceled { return .canceled }
        if let error = error as? BerthError, error.code == .timeout { return .timeout(error.message) }
        return .failed(BerthError.wrapping(error))
    }

    /// Creates a job whose end the caller reports with `finish`.
    public func create(plugin: String, operation: String) async throws -> Job {
        try await create(plugin: plugin, operation: operation, hasTask: false)
    }

    func create(plugin: String, operation: String, hasTask: Bool) async throws -> Job {
        let id = state.withLock { s -> UInt32 in
            defer { s.next &+= 1 }
            return s.next
        }
        let path = "/org/berth/Berth1/job/\(id)"
        let holder = JobHolder()
        let object = try await connection.export(
            path: path,
            interfaces: [Job.interface(cancel: { holder.job?.cancel() }, id: id, plugin: plugin, operation: operation)])
        let job = Job(
            id: id, path: path, plugin: plugin, operation: operation, object: object, registry: self, hasTask: hasTask)
        holder.set(job)
        let manager = state.withLock { s -> BusObject? in
            s.running[id] = job
            return s.manager
        }
        publishJobs()
        manager?.emit("JobNew", [.uint32(id), .objectPath(path), .string(plugin), .string(operation)],
            interface: Self.managerInterface)
        return job
    }

    func finished(_ job: Job, _ result: JobResult) {
        let manager = state.withLock { s -> BusObject? in
            s.running[job.id] = nil
            return s.manager
        }
        publishJobs()
        manager?.emit("JobRemoved", [.uint32(job.id), .objectPath(job.path), .string(job.plugin), .string(result.name)],
            interface: Self.managerInterface)
        switch result {
        case .done: logger.info("job \(job.id) (\(job.plugin) \(job.operation)) done")
        case .failed(let e): logger.warning("job \(job.id) (\(job.plugin) \(job.operation)) failed: \(e.message)")
        default: logger.info("job \(job.id) (\(job.plugin) \(job.operation)) \(result.name)")
        }
        // Only the bus object stays for the retention time (its Cancel handler reaches the job weakly): the job
        // itself is released now, its object when it leaves the bus.
        let retention = self.retention
        let object = job.object
        Task {
            try? await Task.sleep(for: retention)
            object.remove()
        }
    }

    /// Cancels every running job (daemon shutdown).
    public func cancelAll() {
        for job in running { job.cancel() }
    }

    private func publishJobs() {
        let (paths, manager) = state.withLock { s in (s.running.keys.sorted().map { "/org/berth/Berth1/job/\($0)" }, s.manager) }
        manager?.set("Jobs", .objectPaths(paths), interface: Self.managerInterface)
    }
}

/// Lets the Cancel handler reach the job created after its interface. The reference is weak: the job owns its bus
/// object, whose handler owns this holder, so a strong one would keep every finished job alive for ever.
private final class JobHolder: Sendable {
    private struct Weak { weak var job: Job? }
    private let value = Mutex(Weak())
    var job: Job? { value.withLock { $0.job } }
    func set(_ job: Job) { value.withLock { $0.job = job } }
}
