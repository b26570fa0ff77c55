import BerthKit
import Synchronization

/// Turns the engine's events into signals and PropertiesChanged on `/org/berth/Berth1/recorder`. Properties are
/// always set from the engine's own snapshot (`RecorderEngine.properties`), so an event never publishes a value
/// the engine does not hold; `BusObject.set` emits only what changed.
final class RecorderPublisher: Sendable {
    let object: BusObject
    private struct Weak: Sendable { weak var engine: RecorderEngine? }
    private let engine = Mutex(Weak())

    init(object: BusObject) { self.object = object }

    func attach(_ engine: RecorderEngine) { self.engine.withLock { $0.engine = engine } }

    var events: RecorderEvents {
        var events = RecorderEvents()
        events.recordingStarted = { [self] path, start in
            object.emit("RecordingStarted", [.string(path), .uint64(start)])
            publish()
        }
        events.recordingSaved = { [self] id, path, start, seconds in
            publish()
            object.emit("RecordingSaved", [.string(id), .string(path), .uint64(start), .double(seconds)])
        }
        events.detection = { [self] id, d in
            object.emit(
                "Detection",
                [.string(id), .string(d.label), .double(d.score), .double(d.startSeconds), .double(d.endSeconds)])
        }
        events.recordingDeleted = { [self] id, reason in
            object.emit("RecordingDeleted", [.string(id), .string(reason)])
        }
        events.stateChanged = { [self] _, _ in publish() }
        events.deploymentChanged = { [self] _ in publish() }
        events.heartbeat = { [self] status in
            publish()
            object.emit("Heartbeat", [Self.vardict(status)])
        }
        return events
    }

    /// Sets every property from the engine's current values.
    func publish() {
        guard let engine = engine.withLock({ $0.engine }) else { return }
        let p = engine.properties
        object.set([
            ("State", .string(p.state.rawValue)), ("Deployment", Self.deployment(p.deployment)),
            ("Device", .string(p.device)), ("SampleRate", .uint32(p.sampleRate)), ("Channels", .uint32(p.channels)),
            ("RecordingsCount", .uint64(p.recordingsCount)), ("LastRecording", .string(p.lastRecording)),
            ("FreeBytes", .uint64(p.freeBytes)), ("LastHeartbeatUSec", .uint64(p.lastHeartbeatUSec)),
        ])
    }

    /// The `Deployment` property: `id`, `name`, `latitude`, `longitude`, `started_usec`; empty when none is active.
    static func deployment(_ d: Deployment?) -> DBusValue {
        guard let d else { return .vardict([]) }
        return .vardict([
            ("id", .string(d.id)), ("name", .string(d.name)), ("latitude", .double(d.latitude)),
            ("longitude", .double(d.longitude)), ("started_usec", .uint64(UInt64(max(0, d.startedUSec)))),
        ])
    }

    /// `Status()` and `Heartbeat` values as `a{sv}`, keys sorted.
    static func vardict(_ values: [String: StatusValue]) -> DBusValue {
        .vardict(values.sorted { $0.key < $1.key }.map { ($0.key, value($0.value)) })
    }

    static func value(_ v: StatusValue) -> DBusValue {
        switch v {
        case .string(let s): .string(s)
        case .int(let i): .int64(i)
        case .uint(let u): .uint64(u)
        case .double(let d): .double(d)
        case .bool(let b): .bool(b)
        case .strings(let list): .strings(list)
        }
    }
}
