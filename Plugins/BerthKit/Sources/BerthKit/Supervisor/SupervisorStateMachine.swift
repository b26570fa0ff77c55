import Glibc

/// The lifecycle of one supervised unit as a pure state machine: events in, actions out, no I/O and no clock
/// (the caller passes the time). `SupervisedProcess` performs the actions and feeds back their results.
///
///     inactive ──start──▶ activating/start ──ready──▶ active/running
///         ▲                  │ start timeout            │ main exits
///         │                  ▼                          ▼
///     (stop done) ◀── deactivating/stop-sigterm ──timeout──▶ stop-sigkill
///                            │ group gone after a crash
///                            ▼
///               activating/auto-restart ──delay──▶ activating/start   (or failed: start limit, no restart)
struct SupervisorStateMachine: Sendable {
    struct Config: Sendable, Equatable {
        var restart: RestartPolicy
        var restartDelayUSec: UInt64
        var restartDelayMaxUSec: UInt64
        var startTimeoutUSec: UInt64
        var stopTimeoutUSec: UInt64
        var startLimitBurst: Int
        var startLimitIntervalUSec: UInt64
        /// Ready at spawn (`Readiness.immediate`).
        var readyAtSpawn: Bool
        var subject: String

        init(_ spec: ProcessSpec) {
            restart = spec.restart
            restartDelayUSec = spec.restartDelay.microsecondsClamped
            restartDelayMaxUSec = max(spec.restartDelayMax.microsecondsClamped, restartDelayUSec)
            startTimeoutUSec = spec.startTimeout.microsecondsClamped
            stopTimeoutUSec = spec.stopTimeout.microsecondsClamped
            startLimitBurst = max(spec.startLimitBurst, 1)
            startLimitIntervalUSec = spec.startLimitInterval.microsecondsClamped
            readyAtSpawn = spec.readiness == .immediate
            subject = spec.subject
        }
    }

    /// The current time: monotonic for intervals, wall clock for `activeSinceUSec`.
    struct Now: Sendable, Equatable {
        var monotonic: UInt64
        var wall: UInt64
        init(monotonic: UInt64, wall: UInt64) {
            self.monotonic = monotonic
            self.wall = wall
        }
    }

    enum Event: Sendable, Equatable {
        /// A start: `manual` (by hand) resets the start limit and the backoff.
        case start(manual: Bool)
        case stop
        case spawned(pid: Int32)
        case spawnFailed(String)
        case ready
        /// The process said `STOPPING=1`.
        case stopping
        case mainExited(status: Int32)
        /// No process of the group is left.
        case groupGone
        case timerFired(Timer)
    }

    enum Timer: Sendable, Equatable {
        case startTimeout, stopTimeout, restartDelay
    }

    enum Action: Sendable, Equatable {
        case spawn
        case signalGroup(Int32)
        /// Report `.groupGone` once no process of the group is left (main process already reaped).
        case awaitGroupGone
        /// Arm the one timer (replacing any armed one).
        case armTimer(Timer, afterUSec: UInt64)
        case cancelTimer
        /// Resolve everyone waiting for a start.
        case finishStart(BerthError?)
        /// Resolve everyone waiting for a stop.
        case finishStop
    }

    /// Why the unit is deactivating.
    enum StopIntent: Equatable {
        case requested, startTimeout
    }

    let config: Config
    var state = UnitState.inactive
    var subState = UnitSubState.dead
    var mainPID: Int32 = 0
    var restarts: UInt32 = 0
    var exitStatus: Int32 = 0
    var result = UnitResult.success
    var lastError = ""
    var activeSinceUSec: UInt64 = 0
    /// The delay the next automatic restart waits.
    var nextRestartDelayUSec: UInt64 {
        let factor = UInt64(1) << UInt64(min(backoffStep, 40))
        let (delay, overflow) = config.restartDelayUSec.multipliedReportingOverflow(by: factor)
        return overflow ? config.restartDelayMaxUSec : min(delay, config.restartDelayMaxUSec)
    }

    var startTimes: [UInt64] = []
    var backoffStep = 0
    var stopIntent: StopIntent?
    var pendingStartError: BerthError?
    var startQueued = false
    var runStartedMonotonic: UInt64 = 0
    var everReady = false

    init(config: Config) {
        self.config = config
    }

    /// Applies one event; returns the actions to perform, in order.
    mutating func handle(_ event: Event, now: Now) -> [Action] {
        switch event {
        case .start(let manual): onStart(manual: manual, now: now)
        case .stop: onStop()
        case .spawned(let pid): onSpawned(pid: pid, now: now)
        case .spawnFailed(let message): onSpawnFailed(message)
        case .ready: onReady(now: now)
        case .stopping: onStopping()
        case .mainExited(let status): onMainExited(status: status)
        case .groupGone: onGroupGone(now: now)
        case .timerFired(let timer): onTimer(timer, now: now)
        }
    }
}
