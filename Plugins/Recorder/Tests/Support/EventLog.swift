import BerthKit
import Synchronization

@testable import RecorderPlugin

/// Collects the engine's events and lets a test wait for a condition on them, with a time limit.
final class EventLog: Sendable {
    enum Event: Sendable, Equatable {
        case started(path: String, startUSec: UInt64)
        case saved(id: String, path: String, startUSec: UInt64, seconds: Double)
        case state(RecorderState, String?)
        case deployment(String?)
        case heartbeat([String: StatusValue])
        case detection(recordingID: String, Detection)
        case deleted(id: String, reason: String)
    }

    private struct Waiter {
        var predicate: @Sendable ([Event]) -> Bool
        var continuation: CheckedContinuation<Bool, Never>
    }

    private let state = Mutex<(events: [Event], waiters: [Int: Waiter], nextID: Int)>(([], [:], 0))

    var events: [Event] { state.withLock { $0.events } }
    var saved: [Event] { events.filter { if case .saved = $0 { true } else { false } } }
    var savedPaths: [String] { events.compactMap { if case .saved(_, let path, _, _) = $0 { path } else { nil } } }
    var heartbeats: [[String: StatusValue]] { events.compactMap { if case .heartbeat(let s) = $0 { s } else { nil } } }
    var detections: [(recordingID: String, detection: Detection)] {
        events.compactMap { if case .detection(let id, let d) = $0 { (id, d) } else { nil } }
    }
    var deleted: [(id: String, reason: String)] {
        events.compactMap { if case .deleted(let id, let reason) = $0 { (id, reason) } else { nil } }
    }
    var states: [RecorderState] { events.compactMap { if case .state(let s, _) = $0 { s } else { nil } } }

    func append(_ event: Event) {
        let ready = state.withLock { state -> [CheckedContinuation<Bool, Never>] in
            state.events.append(event)
            let done = state.waiters.filter { $0.value.predicate(state.events) }
            for id in done.keys { state.waiters.removeValue(forKey: id) }
            return done.values.map(\.continuation)
        }
        for continuation in ready { continuation.resume(returning: true) }
    }

    /// Waits until `predicate` holds for the events so far; false when `seconds` pass first.
    func wait(seconds: Double, until predicate: @escaping @Sendable ([Event]) -> Bool) async -> Bool {
        await withCheckedContinuation { continuation in
            let id = state.withLock { state -> Int? in
                if predicate(state.events) { return nil }
                state.nextID += 1
                state.waiters[state.nextID] = Waiter(predicate: predicate, continuation: continuation)
                return state.nextID
            }
            guard let id else { return continuation.resume(returning: true) }
            Task {
                try? await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
                let waiter = self.state.withLock { $0.waiters.removeValue(forKey: id) }
                waiter?.continuation.resume(returning: false)
            }
        }
    }

    func waitForSaved(_ count: Int, seconds: Double = 15) async -> Bool {
        await wait(seconds: seconds) { events in
            events.filter { if case .saved = $0 { true } else { false } }.count >= count
        }
    }

    /// Waits for `RecordingDeleted` of `id`.
    func waitForDeleted(_ id: String, seconds: Double = 15) async -> Bool {
        await wait(seconds: seconds) { events in
            events.contains { if case .deleted(id, _) = $0 { true } else { false } }
        }
    }

    func waitForState(_ wanted: RecorderState, seconds: Double = 15) async -> Bool {
        await wait(seconds: seconds) { events in
            events.contains { if case .state(wanted, _) = $0 { true } else { false } }
        }
    }

    var recorderEvents: RecorderEvents {
        var events = RecorderEvents()
        events.recordingStarted = { self.append(.started(path: $0, startUSec: $1)) }
        events.recordingSaved = { self.append(.saved(id: $0, path: $1, startUSec: $2, seconds: $3)) }
        events.stateChanged = { self.append(.state($0, $1)) }
        events.deploymentChanged = { self.append(.deployment($0?.id)) }
        events.heartbeat = { self.append(.heartbeat($0)) }
        events.detection = { self.append(.detection(recordingID: $0, $1)) }
        events.recordingDeleted = { self.append(.deleted(id: $0, reason: $1)) }
        return events
    }
}

/// A temp folder, a fixture and a recorder config that captures from it.
struct EngineFixture: ~Copyable {
    let dir: TempDirectory
    let fixture: Fixture
    var config: RecorderConfig
    let log = EventLog()

    init(
        _ label: String, format: AudioFormat = .init(sampleRate: 8000, channels: 1, sample: .s16le),
        seconds: Double = 20
    ) throws {
        dir = TempDirectory(label)
        fixture = try Fixture(directory: dir.path, format: format, seconds: seconds)
        config = RecorderConfig()
        config.device = "fixture"
        config.alsaConfig = fixture.alsaConfig
        config.sampleRate = format.sampleRate
        config.channels = format.channels
        config.format = format.sample.rawValue
        config.storagePath = dir.path + "/storage"
        config.minFreeBytes = 0
        config.heartbeatInterval = 3600
        config.retryInitialSeconds = 0.05
        config.retryMaxSeconds = 0.2
        config.schedule = ScheduleConfig(windows: [.init(start: "00:00", end: "00:00")], duration: 0.2, interval: 0.5)
    }

    func engine(
        _ config: RecorderConfig? = nil,
        freeBytes: @escaping @Sendable (String) throws -> UInt64 = FileIO.freeBytes
    ) -> RecorderEngine {
        RecorderEngine(
            config: config ?? self.config, logger: Logger(label: "test.recorder"), events: log.recorderEvents,
            freeBytesProvider: freeBytes)
    }
}
