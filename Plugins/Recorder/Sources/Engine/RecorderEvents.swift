/// The recorder's state, as the `State` property shows it.
enum RecorderState: String, Sendable, Equatable {
    /// No active deployment: nothing scheduled.
    case idle
    /// A deployment is active; waiting for the next recording.
    case scheduled
    /// Capturing now.
    case recording
    /// Something is wrong (device gone, storage full, low-disk stop); the reason says what, and the engine retries.
    case error
}

/// One health check: `status` is "ok" or "failed" (acoupi's words), `message` says what was found.
struct CheckResult: Sendable, Equatable {
    var name: String
    var passed: Bool
    var message: String

    var status: String { passed ? "ok" : "failed" }

    static func ok(_ name: String, _ message: String) -> CheckResult {
        .init(name: name, passed: true, message: message)
    }
    static func failed(_ name: String, _ message: String) -> CheckResult {
        .init(name: name, passed: false, message: message)
    }
}

/// A value in `Status()` or a heartbeat (`a{sv}` on the bus).
enum StatusValue: Sendable, Equatable, CustomStringConvertible {
    case string(String)
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    case bool(Bool)
    case strings([String])

    var description: String {
        switch self {
        case .string(let v): v
        case .int(let v): String(v)
        case .uint(let v): String(v)
        case .double(let v): String(v)
        case .bool(let v): String(v)
        case .strings(let v): v.joined(separator: "; ")
        }
    }

    var string: String? { if case .string(let v) = self { v } else { nil } }
}

/// What the engine tells the outside (the D-Bus layer turns these into signals and PropertiesChanged). Called on
/// the engine's own threads or tasks: a handler must not block; hop to the bus thread to emit.
struct RecorderEvents: Sendable {
    /// A file was opened: its final path and the time of its first sample.
    var recordingStarted: @Sendable (_ path: String, _ startUSec: UInt64) -> Void = { _, _ in }
    /// A file was finished, stored in the database and renamed into place.
    var recordingSaved: @Sendable (_ id: String, _ path: String, _ startUSec: UInt64, _ seconds: Double) -> Void = {
        _, _, _, _ in
    }
    /// `State` changed; `reason` explains an `error` state.
    var stateChanged: @Sendable (_ state: RecorderState, _ reason: String?) -> Void = { _, _ in }
    /// A deployment started (non-nil) or stopped (nil).
    var deploymentChanged: @Sendable (_ deployment: Deployment?) -> Void = { _ in }
    /// A processor's detection, stored.
    var detection: @Sendable (_ recordingID: String, _ detection: Detection) -> Void = { _, _ in }
    /// A recording's file was deleted (saving filters, a person's request, low disk, or found missing).
    var recordingDeleted: @Sendable (_ id: String, _ reason: String) -> Void = { _, _ in }
    /// A heartbeat, with the same fields the database row holds.
    var heartbeat: @Sendable (_ status: [String: StatusValue]) -> Void = { _ in }

    init() {}
}
