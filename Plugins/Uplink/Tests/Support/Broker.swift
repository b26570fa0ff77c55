import BerthKit
import BerthTestSupport
import Foundation

/// A real Mosquitto broker on 127.0.0.1 at a free port, with a password file and persistence (so that a
/// subscriber's session and its queued QoS 1 messages survive a broker restart), started and stopped by the test.
final class Broker: @unchecked Sendable {
    let directory: String
    let port: Int
    let user = "berth"
    let password = "s3cret-pw"
    let tls: TestCA?
    private(set) var process: ChildProcess?

    init(in root: String, tls: TestCA? = nil) throws {
        directory = root + "/broker"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        port = freePort()
        self.tls = tls
        let passwd = directory + "/passwd"
        let r = try runTool(["mosquitto_passwd", "-b", "-c", passwd, user, password])
        guard r == 0 else { throw TestFailure("mosquitto_passwd failed") }
        chmod(passwd, 0o600)
        var conf = """
            listener \(port) 127.0.0.1
            allow_anonymous false
            password_file \(passwd)
            persistence true
            persistence_location \(directory)/
            max_queued_messages 100000
            log_dest file \(directory)/mosquitto.log
            log_type all

            """
        if getuid() == 0 { conf += "user root\n" }
        if let tls { conf += "cafile \(tls.caFile)\ncertfile \(tls.certFile)\nkeyfile \(tls.keyFile)\n" }
        try FileSystem.writeAtomically(directory + "/mosquitto.conf", text: conf)
    }

    func start() async throws {
        process = try ChildProcess.spawn(
            ["mosquitto", "-c", directory + "/mosquitto.conf"], stdout: directory + "/stdout.log",
            stderr: directory + "/stdout.log")
        try await waitUntil("mosquitto listens on \(port)") { canConnect(port) }
    }

    /// Stops it (SIGTERM; it saves its persistence file) and waits.
    func stop() async throws {
        guard let process else { return }
        process.signal(SIGTERM)
        _ = try await process.wait(timeout: .seconds(10))
        self.process = nil
    }

    deinit { process?.terminate() }

    var log: String { (try? String(contentsOfFile: directory + "/mosquitto.log", encoding: .utf8)) ?? "" }

    /// The credentials file uplink reads.
    func writeCredentials(_ path: String, password: String? = nil) throws {
        try FileSystem.writeAtomically(
            path, text: "username: \(user)\npassword: '\(password ?? self.password)'\n", mode: 0o600)
    }

    /// A subscriber (mosquitto_sub, QoS 1, persistent session) on `topic`.
    func subscribe(_ topic: String = "berth/#", id: String = "test-subscriber", timestamps: Bool = false) async throws
        -> Subscriber
    {
        try await Subscriber.start(broker: self, topic: topic, id: id, timestamps: timestamps)
    }
}

/// mosquitto_sub writing `retained<TAB>topic<TAB>payload` lines to a file; reconnects by itself across a broker
/// restart (persistent session, so nothing published meanwhile is missed).
final class Subscriber: @unchecked Sendable {
    let output: String
    let process: ChildProcess
    let timestamps: Bool

    private init(output: String, process: ChildProcess, timestamps: Bool) {
        self.output = output
        self.process = process
        self.timestamps = timestamps
    }

    static func start(broker: Broker, topic: String, id: String, timestamps: Bool = false) async throws -> Subscriber {
        let output = broker.directory + "/\(id).out"
        var argv = [
            "mosquitto_sub", "-h", "127.0.0.1", "-p", String(broker.port), "-u", broker.user, "-P", broker.password,
            "-t", topic, "-q", "1", "-c", "-i", id, "-F", timestamps ? "%U\t%r\t%t\t%p" : "%r\t%t\t%p",
        ]
        if let tls = broker.tls { argv += ["--cafile", tls.caFile] }
        let process = try ChildProcess.spawn(argv, stdout: output, stderr: output + ".err")
        let subscriber = Subscriber(output: output, process: process, timestamps: timestamps)
        // Subscribed once the broker logged our SUBSCRIBE.
        try await waitUntil("\(id) subscribed") { broker.log.contains("Received SUBSCRIBE from \(id)") }
        return subscriber
    }

    deinit { process.terminate() }

    struct Message: Equatable {
        var retained: Bool
        var topic: String
        var payload: String
        /// Wall-clock microseconds of arrival (with `timestamps`).
        var arrivalUSec: UInt64 = 0
        var json: [String: Any]? {
            (try? JSONSerialization.jsonObject(with: Data(payload.utf8))) as? [String: Any]
        }
        static func == (a: Message, b: Message) -> Bool {
            a.retained == b.retained && a.topic == b.topic && a.payload == b.payload
        }
    }

    var messages: [Message] {
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            var parts = line.split(separator: "\t", maxSplits: timestamps ? 3 : 2, omittingEmptySubsequences: false)
                .map(String.init)
            var arrival: UInt64 = 0
            if timestamps, parts.count == 4 {
                let time = parts.removeFirst().split(separator: ".")
                arrival = (UInt64(time.first ?? "") ?? 0) * 1_000_000 + (UInt64((time.last ?? "").prefix(6)) ?? 0)
            }
            guard parts.count == 3 else { return nil }
            return Message(retained: parts[0] == "1", topic: parts[1], payload: parts[2], arrivalUSec: arrival)
        }
    }

    /// Lines received so far, counted without parsing them.
    var lineCount: Int {
        guard let data = FileManager.default.contents(atPath: output) else { return 0 }
        return data.reduce(0) { $0 + ($1 == 0x0a ? 1 : 0) }
    }

    /// Event messages (JSON with an id), in arrival order.
    var events: [[String: Any]] { messages.compactMap(\.json).filter { $0["id"] != nil } }

    func waitForEvents(
        _ count: Int, where filter: @escaping ([String: Any]) -> Bool = { _ in true },
        timeout: Duration = .seconds(30)
    ) async throws -> [[String: Any]] {
        try await waitUntil("\(count) messages at the subscriber", timeout: timeout) {
            events.filter(filter).count >= count
        }
        return events.filter(filter)
    }
}

func canConnect(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    return Loopback.connect(fd, port: UInt16(port)) == 0
}

/// Runs a tool to completion (short ones: mosquitto_passwd, openssl); returns its exit status.
@discardableResult
func runTool(_ argv: [String], log: String = "/dev/null") throws -> Int32 {
    let child = try ChildProcess.spawn(argv, stdout: log, stderr: log)
    let deadline = ContinuousClock.now + .seconds(60)
    while child.isRunning {
        if ContinuousClock.now > deadline {
            child.terminate()
            throw TestFailure("\(argv[0]) did not finish")
        }
        usleep(2000)
    }
    return child.exitStatus ?? -1
}
