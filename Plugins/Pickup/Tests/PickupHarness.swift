import BerthKit
import BerthTestSupport
import Foundation
import Synchronization

/// A daemon with the pickup plugin on a private bus, and every Deployed/DeployFailed signal it sends, collected.
final class PickupHarness: Sendable {
    struct Outcome: Sendable, Equatable {
        var ok: Bool
        var id: String
        var name: String
        var target: String
        /// sha256 for Deployed, the reason for DeployFailed.
        var detail: String
    }

    let env: TestEnvironment
    let client: BusConnection
    private let seen = Mutex<[Outcome]>([])
    private let task = Mutex<Task<Void, Never>?>(nil)
    private let daemon = Mutex<DaemonProcess?>(nil)

    static let path = "/org/berth/Berth1/pickup"
    static let interface = "org.berth.Berth1.Pickup"

    init(_ env: TestEnvironment, client: BusConnection) {
        self.env = env
        self.client = client
    }

    /// Connects, retrying briefly: the socket file exists from dbus-daemon's bind(), a moment before listen().
    static func connect(_ env: TestEnvironment) async throws -> BusConnection {
        let deadline = ContinuousClock.now + .seconds(5)
        while true {
            do { return try env.connect() } catch {
                if ContinuousClock.now > deadline { throw error }
                try await Task.sleep(for: .milliseconds(10))
            }
        }
    }

    var stateDir: String { env.stateHome + "/berth/pickup" }
    func folder(_ name: String) -> String { stateDir + "/" + name }

    /// Installs the plugin, starts berthd and subscribes to the outcome signals.
    static func start(_ env: TestEnvironment, config: String = "") async throws -> PickupHarness {
        try env.installPlugins(["libPickupPlugin.so"])
        if !config.isEmpty { try env.writeConfig(config) }
        let harness = PickupHarness(env, client: try await connect(env))
        try await harness.subscribe()
        try await harness.startDaemon()
        return harness
    }

    func startDaemon() async throws {
        let process = try await env.startDaemon()
        daemon.withLock { $0 = process }
        try await waitUntil("the pickup object answers") {
            (try? await self.client.getProperty("org.berth.Berth1", Self.path, Self.interface, "Paused")) != nil
        }
    }

    var daemonLog: String { daemon.withLock { $0 }?.log ?? "" }

    func subscribe() async throws {
        let stream = try await client.signals(path: Self.path, interface: Self.interface)
        let t = Task { [weak self] in
            for await signal in stream {
                let f = signal.arguments.map { $0.string ?? "" }
                guard f.count >= 4 else { continue }  // Deployed has the git commit fifth
                self?.seen.withLock {
                    $0.append(
                        Outcome(ok: signal.member == "Deployed", id: f[0], name: f[1], target: f[2], detail: f[3]))
                }
            }
        }
        task.withLock { $0 = t }
    }

    var outcomes: [Outcome] { seen.withLock { $0 } }
    func outcomes(named name: String) -> [Outcome] { outcomes.filter { $0.name == name } }

    /// Waits until `count` outcomes for `name` were seen; returns them.
    @discardableResult
    func waitFor(_ name: String, count: Int = 1, timeout: Duration = .seconds(10)) async throws -> [Outcome] {
        try await waitUntil("\(count) outcome(s) for \(name) (seen: \(outcomes.map(\.name)))", timeout: timeout) {
            outcomes(named: name).count >= count
        }
        return outcomes(named: name)
    }

    /// Drops a sentinel file into `folder` and waits for it: every change made before it has been handled.
    func barrier(in folder: String, _ tag: String = UUID().uuidString) async throws {
        let name = "zz-barrier-\(tag).txt"
        try Data(tag.utf8).write(to: URL(fileURLWithPath: folder + "/" + name))
        try await waitFor(name)
    }

    func call(_ member: String, _ args: [DBusValue] = []) async throws -> [DBusValue] {
        try await client.call("org.berth.Berth1", Self.path, Self.interface, member, args)
    }

    /// ListDeployments rows: id, name, target, status, sha256, time, error.
    func deployments(limit: UInt32 = 1000) async throws -> [[String]] {
        let reply = try await call("ListDeployments", [.uint32(limit)])
        return (reply.first?.items ?? []).map { row in
            (row.items ?? []).map { $0.string ?? String($0.uint64 ?? 0) }
        }
    }

    func stopDaemon(_ signal: Int32 = SIGTERM) async throws {
        guard let process = daemon.withLock({ $0 }) else { return }
        process.signal(signal)
        _ = try await process.waitForExit()
    }

    func cancel() { task.withLock { $0 }?.cancel() }
}

/// Test helpers on files.
enum Files {
    /// Writes in place as a shell's `>` does: one open with O_TRUNC, one write, one close (one IN_CLOSE_WRITE).
    /// Foundation's Data.write may open the file more than once, which shows as a second close-write.
    static func write(_ path: String, _ text: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw TestFailure("cannot open \(path): \(systemErrorText(errno))") }
        defer { close(fd) }
        try FileSystem.writeAll(fd, Array(text.utf8), path: path)
    }

    /// sha256 with the system's sha256sum (an independent implementation).
    static func sha256sum(_ path: String) async throws -> String {
        let result = try await Command.run(["sha256sum", path])
        guard result.status == 0 else { throw TestFailure("sha256sum failed: \(result)") }
        return String(result.stdout.prefix(64))
    }

    static func sha256(of text: String) async throws -> String {
        let file = NSTemporaryDirectory() + "pickup-sha-\(UUID().uuidString)"
        try write(file, text)
        defer { try? FileManager.default.removeItem(atPath: file) }
        return try await sha256sum(file)
    }

    static func makeTemp() throws -> String {
        var template = Array("/tmp/pickup-src-XXXXXX".utf8CString)
        guard mkdtemp(&template) != nil else { throw TestFailure("mkdtemp failed") }
        return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
