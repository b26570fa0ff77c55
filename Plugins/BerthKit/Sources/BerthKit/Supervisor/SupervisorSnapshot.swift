/// The unit's state, as D-Bus shows it (systemd's ActiveState vocabulary).
public enum UnitState: String, Sendable, Equatable, CaseIterable {
    case inactive, activating, active, deactivating, failed
}

/// The finer state (systemd's SubState vocabulary for services).
public enum UnitSubState: String, Sendable, Equatable, CaseIterable {
    /// Not running.
    case dead
    /// Spawned, waiting for readiness.
    case start
    case running
    /// The process said `STOPPING=1`.
    case stopping
    /// SIGTERM sent to the group (by a stop, a start timeout, or after the main process exited).
    case stopSigterm = "stop-sigterm"
    /// SIGKILL sent to the group after `stopTimeout`.
    case stopSigkill = "stop-sigkill"
    /// Waiting for the restart delay.
    case autoRestart = "auto-restart"
    case failed
}

/// How the last run ended (systemd's Result vocabulary).
public enum UnitResult: String, Sendable, Equatable, CaseIterable {
    case success
    case exitCode = "exit-code"
    case signal
    case timeout
    case startLimitHit = "start-limit-hit"
    case spawnFailed = "spawn-failed"
}

/// Everything observable about a supervised unit, taken at one instant.
public struct SupervisorSnapshot: Sendable, Equatable {
    public var state: UnitState
    public var subState: UnitSubState
    /// The main process, 0 when none.
    public var mainPID: Int32
    /// Automatic restarts since the unit was created.
    public var restarts: UInt32
    /// The last exit: the exit code, or minus the signal number for a signal death (-9); 0 before any exit.
    public var exitStatus: Int32
    /// Wall-clock microseconds since the epoch when the unit last became active; 0 when not active.
    public var activeSinceUSec: UInt64
    /// The endpoint published with `X_BERTH_ENDPOINT=` (or set by the owner); "" when none.
    public var endpoint: String
    /// The last `STATUS=` text.
    public var statusText: String
    public var result: UnitResult
    /// The last error as a sentence ("" when none): why a start failed or why the unit is `failed`.
    public var lastError: String

    public init(
        state: UnitState = .inactive, subState: UnitSubState = .dead, mainPID: Int32 = 0, restarts: UInt32 = 0,
        exitStatus: Int32 = 0, activeSinceUSec: UInt64 = 0, endpoint: String = "", statusText: String = "",
        result: UnitResult = .success, lastError: String = ""
    ) {
        self.state = state
        self.subState = subState
        self.mainPID = mainPID
        self.restarts = restarts
        self.exitStatus = exitStatus
        self.activeSinceUSec = activeSinceUSec
        self.endpoint = endpoint
        self.statusText = statusText
        self.result = result
        self.lastError = lastError
    }
}
