import CBerthShim
import Glibc
import Synchronization

/// One supervised unit: a process (and its process group) started, watched, restarted and stopped according to
/// its `ProcessSpec`. All lifecycle work happens on the FDWatcher's epoll thread, driven by
/// `SupervisorStateMachine`; the async methods only wait for the outcome, they never block a thread.
///
/// Before dropping the last reference, `await stop()`: a unit that is still running keeps its process group.
public final class SupervisedProcess: Sendable {
    public let spec: ProcessSpec
    let supervisor: Supervisor
    let watcher: FDWatcher
    let onChange: (@Sendable (SupervisorSnapshot) -> Void)?
    let core: Mutex<Core>

    /// Everything mutable, touched on the epoll thread (and read under the lock from elsewhere).
    struct Core {
        var machine: SupervisorStateMachine
        var run: Run?
        var log: LogFile?
        var startWaiters: [CheckedContinuation<Void, any Error>] = []
        var stopWaiters: [CheckedContinuation<Void, Never>] = []
        var timer: FDWatcher.Token?
        var timerGeneration: UInt64 = 0
        var groupCheck: FDWatcher.Token?
        var groupCheckDelayUSec: UInt64 = 0
        var endpoint = ""
        var statusText = ""
        var published = SupervisorSnapshot()
        var streams: [Int: AsyncStream<SupervisorSnapshot>.Continuation] = [:]
        var nextStreamID = 0
    }

    /// One spawned process and what belongs to it until its group is gone.
    struct Run {
        var pid: Int32
        var pidfd: Int32
        var pidfdToken: FDWatcher.Token?
        var reaped = false
        var logPipe: LogPipe?
        var notify: NotifySocket?
        var notifyToken: FDWatcher.Token?
        var probe: TCPProbe?
        var pgid: Int32 { pid }
    }

    init(spec: ProcessSpec, supervisor: Supervisor, onChange: (@Sendable (SupervisorSnapshot) -> Void)?) {
        self.spec = spec
        self.supervisor = supervisor
        self.watcher = supervisor.watcher
        self.onChange = onChange
        core = Mutex(Core(machine: SupervisorStateMachine(config: .init(spec))))
    }

    /// Starts the unit by hand (this resets the start limit) and returns once it is ready. Throws the reason when
    /// it fails to spawn, exits or is stopped before it is ready, or is not ready within `startTimeout` (then its
    /// group has already been stopped). Returns at once when the unit is already active.
    ///
    /// Cancelling the calling task while the unit is not ready yet stops it (as `stop()` does) and throws
    /// `CancellationError` once its group is gone: a cancelled start never leaves the unit coming up. A task that
    /// is already cancelled does not start it at all. When it returns, the unit's group is in the pids file.
    public func start() async throws {
        try Task.checkCancellation()
        let canceled = Mutex(false)
        do {
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                    watcher.perform { [self] in
                        // A cancel queued before this start (the handler ran first) stops nothing: start nothing.
                        if canceled.withLock({ $0 }) {
                            continuation.resume(throwing: CancellationError())
                            return
                        }
                        apply { core in
                            core.startWaiters.append(continuation)
                            return [.start(manual: true)]
                        }
                    }
                }
            } onCancel: {
                canceled.withLock { $0 = true }
                watcher.perform { [self] in
                    apply { core in
                        // Only a unit that is still coming up is stopped; an active one already answered the start.
                        let machine = core.machine
                        let starting = machine.state == .activating
                            || (machine.state == .deactivating && machine.startQueued)
                        return starting ? [.stop] : []
                    }
                }
            }
        } catch {
            if canceled.withLock({ $0 }) { throw CancellationError() }
            throw error
        }
        // The group is in the pids file before the start is reported (a kill -9 right after still finds it).
        await supervisor.pidsFileWritten()
    }

    /// Stops the unit: SIGTERM to its process group, SIGKILL after `stopTimeout`. Returns when no process of the
    /// group is left (or at once when nothing runs), and its group is out of the pids file on disk. Cancels a
    /// pending automatic restart.
    public func stop() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            watcher.perform { [self] in
                apply { core in
                    core.stopWaiters.append(continuation)
                    return [.stop]
                }
            }
        }
        await supervisor.pidsFileWritten()
    }

    /// Stops (if running), then starts by hand.
    public func restart() async throws {
        await stop()
        try await start()
    }

    /// The unit as it is now.
    public var snapshot: SupervisorSnapshot {
        core.withLock { $0.published }
    }

    /// The current snapshot, then one element per change, until the stream is dropped.
    public func snapshots() -> AsyncStream<SupervisorSnapshot> {
        let (stream, continuation) = AsyncStream.makeStream(of: SupervisorSnapshot.self, bufferingPolicy: .unbounded)
        let id = core.withLock { core in
            let id = core.nextStreamID
            core.nextStreamID += 1
            core.streams[id] = continuation
            continuation.yield(core.published)
            return id
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.core.withLock { $0.streams.removeValue(forKey: id) }
        }
        return stream
    }

    /// Waits until the unit has ended (`inactive` or `failed`) and returns that snapshot; nil when `timeout` passes
    /// first or the task is cancelled. For one-shot units (`restart: .no`: commands, processors, git); the caller
    /// stops the unit either way.
    public func waitForEnd(timeout: Duration) async -> SupervisorSnapshot? {
        await withTaskGroup(of: SupervisorSnapshot?.self) { group in
            group.addTask {
                for await snapshot in self.snapshots() where snapshot.state == .inactive || snapshot.state == .failed {
                    return snapshot
                }
                return nil
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    /// Runs a one-shot unit to its end: starts it (stopped again when the start fails, which throws), waits for its
    /// end or `timeout` (`waitForEnd`) and stops it either way. Returns the last snapshot, nil after the time limit.
    public func runToEnd(timeout: Duration) async throws -> SupervisorSnapshot? {
        do {
            try await start()
        } catch {
            await stop()
            throw error
        }
        let finished = await waitForEnd(timeout: timeout)
        await stop()
        return finished
    }

    /// The last `lines` lines of the current log file (empty without a log).
    public func tail(lines: Int) -> [String] {
        guard let path = spec.logPath else { return [] }
        if let log = core.withLock({ $0.log }) { return log.tail(lines: lines) }
        return (try? LogFile(path: path, maxBytes: 0, keep: 0))?.tail(lines: lines) ?? []
    }

    /// Closes and reopens the log file at its path (after an external logrotate moved it).
    public func reopenLogs() throws {
        try core.withLock { $0.log }?.reopen()
    }

    static func now() -> SupervisorStateMachine.Now {
        .init(monotonic: SystemClock.monotonicUSec(), wall: SystemClock.wallUSec())
    }
}
