/// When a supervised process counts as ready.
public enum Readiness: Sendable, Equatable, CustomStringConvertible {
    /// Ready as soon as it is spawned.
    case immediate
    /// Ready when it sends `READY=1` to `$NOTIFY_SOCKET` (the sd_notify protocol).
    case notify
    /// Ready when 127.0.0.1:port accepts a TCP connection.
    case tcp(port: UInt16)

    public var description: String {
        switch self {
        case .immediate: "immediate"
        case .notify: "notify"
        case .tcp(let port): "tcp:\(port)"
        }
    }
}

/// When an exited process is started again.
public enum RestartPolicy: String, Sendable, Equatable, CaseIterable {
    case no
    /// After a non-zero exit code, a signal death, or an exit before it became ready.
    case onFailure = "on-failure"
    case always
}

/// What to run and how to supervise it. Durations are validated by the caller's config layer; the supervisor
/// clamps negative values to zero.
public struct ProcessSpec: Sendable, Equatable {
    /// The unit's name, used in messages and file names ("laser", "web-jCCbfV").
    public var name: String
    /// The kind of unit in messages: `service "laser" failed to start: ...`.
    public var kind: String
    /// argv; `argv[0]` is the executable: a path, or a bare name looked up in `PATH`.
    public var argv: [String]
    /// Variables set for the child, over the daemon's environment when `inheritEnvironment` is true.
    public var environment: [String: String]
    public var inheritEnvironment: Bool
    /// The child's working folder (nil: the daemon's). A relative `argv[0]` containing "/" is relative to it.
    public var workingDirectory: String?
    /// stdout and stderr are appended here (nil: discarded).
    public var logPath: String?
    /// Rotate the log once it reaches this size (0: never).
    public var logMaxBytes: Int
    /// How many rotated logs to keep (`x.log.1` … `x.log.N`).
    public var logKeep: Int
    public var readiness: Readiness
    public var restart: RestartPolicy
    /// The first restart's delay; each consecutive restart doubles it up to `restartDelayMax`.
    public var restartDelay: Duration
    public var restartDelayMax: Duration
    /// Not ready after this long: the group is stopped and the start fails (zero: wait for ever).
    public var startTimeout: Duration
    /// SIGTERM, then SIGKILL to the group after this long (zero: SIGKILL at once).
    public var stopTimeout: Duration
    /// More than `startLimitBurst` starts within `startLimitInterval`: the unit is `failed` until started by hand.
    public var startLimitBurst: Int
    public var startLimitInterval: Duration

    public init(
        name: String, kind: String = "service", argv: [String], environment: [String: String] = [:],
        inheritEnvironment: Bool = true, workingDirectory: String? = nil, logPath: String? = nil,
        logMaxBytes: Int = 10 << 20, logKeep: Int = 5, readiness: Readiness = .immediate,
        restart: RestartPolicy = .onFailure, restartDelay: Duration = .milliseconds(100),
        restartDelayMax: Duration = .seconds(30), startTimeout: Duration = .seconds(30),
        stopTimeout: Duration = .seconds(10), startLimitBurst: Int = 5, startLimitInterval: Duration = .seconds(10)
    ) {
        self.name = name
        self.kind = kind
        self.argv = argv
        self.environment = environment
        self.inheritEnvironment = inheritEnvironment
        self.workingDirectory = workingDirectory
        self.logPath = logPath
        self.logMaxBytes = logMaxBytes
        self.logKeep = logKeep
        self.readiness = readiness
        self.restart = restart
        self.restartDelay = restartDelay
        self.restartDelayMax = restartDelayMax
        self.startTimeout = startTimeout
        self.stopTimeout = stopTimeout
        self.startLimitBurst = startLimitBurst
        self.startLimitInterval = startLimitInterval
    }

    /// "service \"laser\"" — the subject of every message about this unit.
    var subject: String { "\(kind) \"\(name)\"" }
}

extension ProcessSpec {
    /// A command run once to its end (`SupervisedProcess.runToEnd`): ready at once, never restarted, its output in
    /// `logPath` without rotation, SIGKILL 2 s after SIGTERM.
    public static func oneShot(
        name: String, kind: String, argv: [String], environment: [String: String] = [:],
        workingDirectory: String? = nil, logPath: String
    ) -> ProcessSpec {
        ProcessSpec(
            name: name, kind: kind, argv: argv, environment: environment, workingDirectory: workingDirectory,
            logPath: logPath, logMaxBytes: 0, logKeep: 0, readiness: .immediate, restart: .no, startTimeout: .zero,
            stopTimeout: .seconds(2), startLimitBurst: 1000)
    }
}
