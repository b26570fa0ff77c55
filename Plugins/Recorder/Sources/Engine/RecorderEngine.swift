import BerthKit
import Synchronization

/// The recorder without its D-Bus face: deployments, the schedule loop, recording sessions, health checks,
/// status, heartbeats and the low-disk policy. The D-Bus layer calls these methods and turns `RecorderEvents`
/// into signals and property changes.
///
/// Blocking work (ALSA, files, fsync, SQLite) runs on dedicated threads; the async methods only wait for it.
/// Mutable state lives behind one mutex, never held across an await.
final class RecorderEngine: Sendable {
    let config: RecorderConfig
    let logger: Logger
    let events: RecorderEvents
    /// Wall clock in microseconds (injectable for tests).
    let clock: @Sendable () -> Int64
    let zoneDirectory: String
    let freeBytesProvider: @Sendable (String) throws -> UInt64
    /// Where processor runs keep their supervisor's state and output files (nil: `<storage>/.processing`).
    let runtimeDirectory: String?
    /// Asks the uplink plugin what it still has to deliver (`saving.wait_for_uplink`).
    let uplink: UplinkProbe?
    /// The configuration built, or why it cannot be: an engine with a bad config still answers `check()` and
    /// `status()`, and refuses to record with `.invalidConfig`.
    let resolved: Result<ResolvedRecorderConfig, BerthError>

    /// What exists once `start()` has opened the storage.
    struct Runtime: Sendable {
        let resolved: ResolvedRecorderConfig
        let store: MetadataStore
        let storage: StorageGuard
    }

    struct State: Sendable {
        var runtime: Runtime?
        var state = RecorderState.idle
        var reason: String?
        var deployment: Deployment?
        var scheduler: Task<Void, Never>?
        var heartbeat: Task<Void, Never>?
        var transitioning = false
        var session: RecordingSession?
        /// Device probes in progress (checks, retries): a session does not start meanwhile.
        var probes = 0
        var nextRecordingUSec: Int64?
        var lastRecording: RecordingRow?
        var recordingsCount: Int64 = 0
        /// Overruns of finished sessions; the running session's are read live from its capture.
        var finishedOverruns = 0
        var overrunsAtLastBeat = 0
        var recordingsSinceBeat = 0
        var errorsSinceBeat: [String] = []
        var recentErrors: [String] = []
        var captureProblem: String?
        var writerProblem: String?
        var policyStop: String?
        var lastChecks: [CheckResult] = []
        var lastHeartbeatUSec: Int64?
        var recovery: [PartialRecovery.Action] = []
        var processing: ProcessingRuntime?
        var processingLoop: Task<Void, Never>?
        var processorsRunning = 0
        var counts = RecordingCounts()
        var countsDirty = false
        var countsReadUSec: Int64?
        /// The last problem asking the uplink, said once.
        var uplinkProblem: String?
    }

    let mutable = Mutex(State())

    init(
        config: RecorderConfig, logger: Logger = Logger(label: "berth.recorder"), events: RecorderEvents = .init(),
        clock: @escaping @Sendable () -> Int64 = { Int64(SystemClock.wallUSec()) },
        zoneDirectory: String = TimeZoneRules.defaultDirectory,
        freeBytesProvider: @escaping @Sendable (String) throws -> UInt64 = FileIO.freeBytes,
        runtimeDirectory: String? = nil, uplink: UplinkProbe? = nil
    ) {
        self.runtimeDirectory = runtimeDirectory
        self.uplink = uplink
        self.config = config
        self.logger = logger
        self.events = events
        self.clock = clock
        self.zoneDirectory = zoneDirectory
        self.freeBytesProvider = freeBytesProvider
        resolved = Result { try config.resolved(zoneDirectory: zoneDirectory) }.mapError { BerthError.wrapping($0) }
    }

    /// Opens the storage and the database (migrating it), recovers partial files left by a crash, resumes an
    /// active deployment and starts the heartbeat. `.invalidConfig` when the configuration is bad.
    func start() async throws {
        let resolved = try resolved.get()
        let claimed = mutable.withLock { state in
            if state.runtime != nil || state.transitioning { return false }
            state.transitioning = true
            return true
        }
        guard claimed else { throw BerthError.busy("the recorder is already started") }
        defer { mutable.withLock { $0.transitioning = false } }
        let processing = try await makeProcessing(resolved)
        let (runtime, recovery, active, last, count) = try await OSThread.run(name: "berth-rec-open") {
            [config, logger, freeBytesProvider, events] in
            try resolved.layout.prepare()
            let processors = config.processing.processors.map(\.name)
            let store = try MetadataStore(
                path: resolved.layout.database, processors: processors, keepAtInsert: !config.saving.hasFilters)
            let reopened = try store.reopenInterruptedTasks(
                processors: processors, atUSec: Int64(SystemClock.wallUSec()))
            if reopened > 0 {
                logger.notice("recorder: \(reopened) processor run(s) cut short by the last stop are queued again")
            }
            let storage = StorageGuard(
                layout: resolved.layout, store: store, minFreeBytes: config.minFreeBytes, policy: config.lowDiskPolicy,
                logger: logger, freeBytesProvider: freeBytesProvider,
                onDeleted: { [events] id, reason in events.recordingDeleted(id, reason) })
            let recovery = try PartialRecovery.run(
                layout: resolved.layout, store: store, minimumSeconds: config.recoveryMinSeconds, logger: logger)
            _ = try? storage.freeBytes()
            return (
                Runtime(resolved: resolved, store: store, storage: storage), recovery, try store.activeDeployment(),
                try store.latestRecording(), try store.recordingCount()
            )
        }
        mutable.withLock { state in
            state.runtime = runtime
            state.recovery = recovery
            state.deployment = active
            state.lastRecording = last
            state.recordingsCount = count
            state.heartbeat = Task { await self.heartbeatLoop(runtime) }
            state.processing = processing
            state.processingLoop = Task { await self.processingLoop(runtime, processing) }
        }
        if let active {
            logger.notice("recorder: resuming deployment \"\(active.name)\" (\(active.id))")
            startScheduler(runtime, deployment: active)
        }
    }

    /// Stops recording (the file in progress is finished) and the heartbeat. An active deployment stays active
    /// in the database and resumes at the next `start()`.
    func shutdown() async {
        let (scheduler, heartbeat, session, processing) = mutable.withLock { state in
            defer {
                state.scheduler = nil
                state.heartbeat = nil
                state.processingLoop = nil
            }
            return (state.scheduler, state.heartbeat, state.session, state.processingLoop)
        }
        scheduler?.cancel()
        heartbeat?.cancel()
        processing?.cancel()
        session?.stop()
        await scheduler?.value
        await heartbeat?.value
        await processing?.value
        while mutable.withLock({ $0.session != nil }) { try? await Task.sleep(for: .milliseconds(5)) }
        mutable.withLock { $0.runtime = nil }
    }

    func requireRuntime() throws -> Runtime {
        _ = try resolved.get()
        guard let runtime = mutable.withLock({ $0.runtime }) else {
            throw BerthError.failed("the recorder is not started")
        }
        return runtime
    }

    /// Sets `State` and tells the listeners when it changed.
    func setState(_ new: RecorderState, reason: String? = nil) {
        let changed = mutable.withLock { state in
            guard state.state != new || state.reason != reason else { return false }
            state.state = new
            state.reason = reason
            return true
        }
        if changed { events.stateChanged(new, reason) }
    }

    /// Logs an error and keeps it for `Status()` and the next heartbeat.
    func noteError(_ message: String) {
        logger.error("recorder: \(message)")
        let stamped = "\(CivilDateTime(usec: clock()).databaseText) UTC: \(message)"
        mutable.withLock { state in
            state.recentErrors = Array((state.recentErrors + [stamped]).suffix(20))
            state.errorsSinceBeat = Array((state.errorsSinceBeat + [message]).suffix(20))
        }
    }

    /// Actions taken by crash recovery at the last start.
    var recoveryActions: [PartialRecovery.Action] { mutable.withLock { $0.recovery } }

    var state: RecorderState { mutable.withLock { $0.state } }
    var activeDeployment: Deployment? { mutable.withLock { $0.deployment } }
}

extension RecorderEngine {
    /// The processors' supervisor (one per engine, in its own runtime folder) and the saving policy.
    func makeProcessing(_ resolved: ResolvedRecorderConfig) async throws -> ProcessingRuntime {
        let policy = try SavingPolicy(config: config.saving, zone: resolved.schedule.zone)
        guard !config.processing.isEmpty else {
            return ProcessingRuntime(config: config.processing, runner: nil, policy: policy)
        }
        let folder = runtimeDirectory ?? resolved.layout.storage + "/.processing"
        let runner = try await OSThread.run(name: "berth-rec-open") { [logger] in
            try FileIO.makeDirectories(folder + "/output", mode: 0o700)
            let supervisor = try Supervisor(runtimeDirectory: folder, logger: logger)
            return ProcessorRunner(supervisor: supervisor, outputFolder: folder + "/output")
        }
        return ProcessingRuntime(config: config.processing, runner: runner, policy: policy)
    }
}
