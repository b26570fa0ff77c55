import BerthKit
import BerthTestSupport
import Foundation

/// berthd with the pickup and uplink plugins on a private bus. pickup is the source of real events: each `deploy`
/// uploads a file to its `files` target, and pickup's `Deployed` signal is what uplink routes.
final class UplinkWorld: @unchecked Sendable {
    static let path = "/org/berth/Berth1/uplink"
    static let interface = "org.berth.Berth1.Uplink"
    let env: TestEnvironment
    let client: BusConnection
    private(set) var daemon: DaemonProcess?

    init(_ env: TestEnvironment) throws {
        self.env = env
        try env.installPlugins(["libPickupPlugin.so", "libUplinkPlugin.so"])
        client = try env.connect()
    }

    /// A running broker with a subscriber, and a world whose credentials file the broker accepts (not started).
    static func withBroker(_ env: TestEnvironment) async throws -> (Broker, Subscriber, UplinkWorld) {
        let broker = try Broker(in: env.root)
        try await broker.start()
        let subscriber = try await broker.subscribe()
        let world = try UplinkWorld(env)
        try broker.writeCredentials(world.credentialsFile)
        return (broker, subscriber, world)
    }

    var credentialsFile: String { env.root + "/uplink-credentials.yaml" }

    /// An `uplink:` section with one destination; `extra` lines go into the destination.
    static func config(
        destination: String = "broker", kind: String = "mqtt", _ lines: [String], top: [String] = []
    ) -> String {
        let head = ["host: testhost", "heartbeat: 0s", "retry_initial: 100ms", "retry_max: 400ms"]
        return
            (["uplink:"] + (head + top).map { "  " + $0 } + [
                "  destinations:", "    \(destination):", "      kind: \(kind)",
            ]
            + lines.map { "      " + $0 }).joined(separator: "\n") + "\n"
    }

    func mqttConfig(_ broker: Broker, extra: [String] = [], top: [String] = []) -> String {
        Self.config(
            ["host: 127.0.0.1", "port: \(broker.port)", "credentials: \(credentialsFile)", "events: [pickup.*]"]
                + extra, top: top)
    }

    func start(config: String) async throws {
        try env.writeConfig(config)
        try await startDaemon()
    }

    func startDaemon() async throws {
        daemon = try await env.startDaemon()
        try await waitUntil("the uplink object answers") { (try? await self.property("Pending")) != nil }
    }

    var log: String { daemon?.log ?? "" }

    func call(_ member: String, _ args: [DBusValue] = []) async throws -> [DBusValue] {
        try await client.call("org.berth.Berth1", Self.path, Self.interface, member, args)
    }

    func property(_ name: String) async throws -> DBusValue {
        try await client.getProperty("org.berth.Berth1", Self.path, Self.interface, name)
    }

    func pending() async throws -> UInt64 { try await property("Pending").uint64 ?? 0 }

    /// Deploys `name` through pickup (a real Deployed signal) and returns its deployment id.
    @discardableResult
    func deploy(_ name: String) async throws -> String {
        let reply = try await client.call(
            "org.berth.Berth1", "/org/berth/Berth1/pickup", "org.berth.Berth1.Pickup", "Deploy",
            [.string(name), .bytes(Array("content of \(name)\n".utf8)), .string("files")])
        return reply.first?.string ?? ""
    }

    /// Waits for a job (from a `(u, o)` reply) to end; returns (result, error message).
    func finish(_ reply: [DBusValue], timeout: Duration = .seconds(60)) async throws -> (String, String) {
        guard reply.count == 2, case .objectPath(let job) = reply[1] else { throw TestFailure("not a job: \(reply)") }
        var result = ""
        var message = ""
        try await waitUntil("job \(job) ends", timeout: timeout) {
            let state = try await self.client.getProperty("org.berth.Berth1", job, "org.berth.Berth1.Job", "State")
            guard state.string != "running" else { return false }
            result =
                try await self.client.getProperty("org.berth.Berth1", job, "org.berth.Berth1.Job", "Result").string
                ?? ""
            message =
                try await self.client.getProperty("org.berth.Berth1", job, "org.berth.Berth1.Job", "ErrorMessage")
                .string
                ?? ""
            return true
        }
        return (result, message)
    }
}

extension Array where Element == [String: Any] {
    /// Each message once (by id), in first-arrival order: what a consumer dropping duplicates sees.
    var deduplicated: [[String: Any]] {
        var seen = Set<String>()
        return filter { seen.insert($0["id"] as? String ?? "").inserted }
    }

    func fieldValues(_ key: String) -> [String] {
        map { (($0["fields"] as? [String: Any])?[key] as? String) ?? "" }
    }
}
