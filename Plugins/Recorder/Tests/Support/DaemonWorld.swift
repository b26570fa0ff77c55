import BerthKit
import BerthTestSupport
import Foundation

@testable import RecorderPlugin

/// berthd with the recorder plugin on a private bus, a raw fixture played by an inline ALSA file PCM, and the
/// recorder's signals collected as they arrive.
struct DaemonWorld {
    static let path = "/org/berth/Berth1/recorder"
    static let interface = "org.berth.Berth1.Recorder"
    let env: TestEnvironment
    let fixture: Fixture

    init(_ env: TestEnvironment, seconds: Double = 20, rate: Int = 48000) throws {
        self.env = env
        try env.installPlugins(["libRecorderPlugin.so"])
        fixture = try Fixture(
            directory: env.root, format: AudioFormat(sampleRate: rate, channels: 1, sample: .s16le), seconds: seconds)
    }

    /// `<state dir>/recorder`: the default storage.
    var storage: String { env.stateHome + "/berth/recorder" }

    /// A `recorder:` section playing the fixture; `extra` lines (`key: value`) are added or replace a default.
    func config(device: String = "fixture", _ extra: [String] = []) -> String {
        let alsa = fixture.alsaConfig.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .joined(separator: " ")
        var lines = [
            "device: \(device)", "alsa_config: '\(alsa)'", "sample_rate: \(fixture.format.sampleRate)", "channels: 1",
            "format: S16_LE", "min_free_bytes: 0", "retry_initial: 0.2", "retry_max: 0.5",
        ]
        // A line of `extra` replaces the default with the same key.
        for line in extra {
            let key = line.prefix { $0 != ":" }
            lines.removeAll { $0.prefix { $0 != ":" } == key }
            lines.append(line)
        }
        lines = ["recorder:"] + lines.map { "  " + $0 }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Bytes in the largest file being written in `recordings/.partial`.
    func partialBytes() -> Int {
        let partials = storage + "/recordings/.partial"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: partials)) ?? []
        return names.filter { $0.hasSuffix(".partial") }.map {
            (try? FileManager.default.attributesOfItem(atPath: partials + "/" + $0)[.size] as? Int) ?? 0
        }.max() ?? 0
    }

    func call(_ member: String, _ args: [DBusValue] = [], timeout: Duration = .seconds(25)) async throws -> [DBusValue] {
        try await env.connect().call("org.berth.Berth1", Self.path, Self.interface, member, args, timeout: timeout)
    }

    func property(_ name: String) async throws -> DBusValue {
        try await env.connect().getProperty("org.berth.Berth1", Self.path, Self.interface, name)
    }

    /// The error name and message a call fails with.
    func failure(_ member: String, _ args: [DBusValue]) async throws -> DBusError {
        do {
            _ = try await call(member, args)
        } catch let error as DBusError {
            return error
        }
        throw TestFailure("\(member)(\(args)) did not fail")
    }
}

/// Signals from berthd, collected in the background so tests can wait for them with a time limit.
final class SignalLog: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [BusSignalMessage] = []
    private var task: Task<Void, Never>?
    private let connection: BusConnection

    init(_ env: TestEnvironment, path: String? = nil, member: String? = nil) async throws {
        connection = try env.connect()
        let stream = try await connection.signals(sender: "org.berth.Berth1", path: path, member: member)
        task = Task { [weak self] in
            for await signal in stream {
                guard let self else { return }
                self.lock.withLock { self.items.append(signal) }
            }
        }
    }

    deinit { task?.cancel() }

    func all(_ member: String) -> [BusSignalMessage] { lock.withLock { items.filter { $0.member == member } } }

    /// Waits until at least `count` signals named `member` arrived; returns them.
    @discardableResult
    func wait(_ member: String, count: Int = 1, timeout: Duration = .seconds(20)) async throws -> [BusSignalMessage] {
        try await waitUntil("\(count) \(member) signal(s)", timeout: timeout) { all(member).count >= count }
        return all(member)
    }
}

/// The saved file of a `RecordingSaved` signal: (id, path, start_usec, seconds).
struct Saved {
    var id: String
    var path: String
    var startUSec: UInt64
    var seconds: Double

    init(_ signal: BusSignalMessage) {
        id = signal.arguments[0].string ?? ""
        path = signal.arguments[1].string ?? ""
        startUSec = signal.arguments[2].uint64 ?? 0
        seconds = signal.arguments[3].double ?? 0
    }
}
