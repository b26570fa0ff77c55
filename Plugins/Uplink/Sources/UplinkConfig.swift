import BerthKit

/// The `uplink:` section:
///
///     uplink:
///       host: field-17                 # the host name in messages and topics (default: gethostname)
///       heartbeat: 60s                 # berth's own computed heartbeat; 0 turns it off
///       retry_initial: 1s              # the first wait after a failed delivery; doubles up to retry_max
///       retry_max: 60s
///       max_pending: 100000            # the outbox's cap, rows and bytes; past it the oldest are dropped (counted)
///       max_pending_bytes: 64M
///       events: [recorder.*, pickup.*, services.StateChanged, instances.StateChanged, plugin.StateChanged,
///                uplink.Heartbeat]     # the default route of every destination
///       destinations:
///         NAME:
///           kind: mqtt                 # or http
///           host: broker.example.org   # mqtt: host, port (1883; 8883 with tls_ca), client_id (machine id),
///           port: 1883                 #       keepalive, topic, status_topic, tls_ca
///           topic: berth/{host}/{plugin}/{event}
///           url: https://...           # http: url, timeout, tls_ca
///           credentials: /etc/berth/uplink-NAME.yaml   # username/password (mqtt), headers (http); mode 0600
///           events: [pickup.Deployed]  # this destination's route (default: the section's events)
struct UplinkConfig: Sendable, Equatable {
    var host: String?
    var heartbeat: Duration = .seconds(60)
    var retryInitial: Duration = .seconds(1)
    var retryMax: Duration = .seconds(60)
    var maxPending = 100_000
    var maxPendingBytes = 64 << 20
    var events = UplinkConfig.defaultEvents
    var destinations: [DestinationConfig] = []

    static let defaultEvents = [
        "recorder.Heartbeat", "recorder.RecordingSaved", "recorder.Detection", "pickup.Deployed",
        "pickup.DeployFailed", "services.StateChanged", "instances.StateChanged", "plugin.StateChanged",
        "uplink.Heartbeat",
    ]

    /// `defaults` gives the values of the keys the section leaves out (an import leaves them to the config file).
    static func parse(_ node: ConfigNode?, path: String = "uplink", defaults: UplinkConfig = UplinkConfig()) throws
        -> UplinkConfig
    {
        var config = defaults
        config.destinations = []
        guard let node else { return config }
        let reader = try ConfigReader(node, path: path)
        if let host = try reader.nonEmptyString("host") {
            guard Topic.isPlainLevel(host) else {
                throw reader.error("host", "must not contain / + # or NUL, got \(BerthError.quote(host))")
            }
            config.host = host
        }
        if let beat = try reader.duration("heartbeat") {
            guard beat == .zero || beat >= .milliseconds(100) else {
                throw reader.error("heartbeat", "must be 0 (off) or at least 100ms, got \(beat)")
            }
            config.heartbeat = beat
        }
        config.retryInitial = try positive(reader, "retry_initial") ?? config.retryInitial
        config.retryMax = try positive(reader, "retry_max") ?? config.retryMax
        if config.retryMax < config.retryInitial {
            throw reader.error("retry_max", "must be at least retry_initial (\(config.retryInitial))")
        }
        config.maxPending = try reader.int("max_pending", in: 1...100_000_000) ?? config.maxPending
        if let bytes = try reader.byteSize("max_pending_bytes") {
            guard bytes >= 4096, bytes <= 1 << 40 else {
                throw reader.error("max_pending_bytes", "must be 4K to 1T, got \(bytes) bytes")
            }
            config.maxPendingBytes = Int(bytes)
        }
        if let events = try reader.stringList("events") {
            try checkEvents(events, reader, "events")
            config.events = events
        }
        if let destinations = try reader.reader("destinations") {
            for entry in destinations.entries() {
                guard Topic.isPlainName(entry.key) else {
                    throw destinations.error(entry.key, "a destination name must be 1 to 64 letters, digits, - _ .")
                }
                let d = try ConfigReader(entry.value, path: destinations.keyPath(entry.key))
                config.destinations.append(try DestinationConfig.parse(d, name: entry.key, events: config.events))
                try d.finish()
            }
            try destinations.finish()
        }
        try reader.finish()
        return config
    }

    private static func positive(_ reader: ConfigReader, _ key: String) throws -> Duration? {
        guard let value = try reader.duration(key) else { return nil }
        guard value >= .milliseconds(10), value <= .seconds(86400) else {
            throw reader.error(key, "must be 10ms to 24h, got \(value)")
        }
        return value
    }

    static func checkEvents(_ events: [String], _ reader: ConfigReader, _ key: String) throws {
        for event in events where !EventName.isPattern(event) {
            throw reader.error(
                key, "\(BerthError.quote(event)) is not an event: write PLUGIN.Signal, PLUGIN.* or *")
        }
    }

    /// The section as ExportConfig writes it: every key but the credentials files.
    func node() -> ConfigNode {
        var pairs: [(String, ConfigNode)] = []
        if let host { pairs.append(("host", .string(host))) }
        pairs += [
            ("heartbeat", .plain(Self.text(heartbeat))), ("retry_initial", .plain(Self.text(retryInitial))),
            ("retry_max", .plain(Self.text(retryMax))), ("max_pending", .int(maxPending)),
            ("max_pending_bytes", .int(maxPendingBytes)), ("events", .list(events.map(ConfigNode.string))),
        ]
        if !destinations.isEmpty {
            pairs.append(("destinations", .map(destinations.map { ($0.name, $0.node()) })))
        }
        return .map(pairs)
    }

    /// The config file's section with the imported destinations (ImportConfig, kept in the state folder): an
    /// imported destination takes the place of the config file's destination of its name; the others follow in
    /// the order given.
    static func merging(file: UplinkConfig, imported: [DestinationConfig]) -> UplinkConfig {
        var merged = file
        let byName = Dictionary(imported.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        merged.destinations = file.destinations.map { byName[$0.name] ?? $0 }
        let fileNames = Set(file.destinations.map(\.name))
        merged.destinations += imported.filter { !fileNames.contains($0.name) }
        return merged
    }

    /// A duration as config text, in milliseconds.
    static func text(_ duration: Duration) -> String { "\(duration.microsecondsClamped / 1000)ms" }
}

/// One destination of the `destinations:` mapping.
struct DestinationConfig: Sendable, Equatable {
    enum Kind: String, Sendable { case mqtt, http }
    var name: String
    var kind: Kind
    var host = ""
    var port = 1883
    var clientID: String?
    var keepalive: Duration = .seconds(30)
    var topic = "berth/{host}/{plugin}/{event}"
    var statusTopic = "berth/{host}/status"
    var url = ""
    var timeout: Duration = .seconds(10)
    var tlsCA: String?
    var credentials: String?
    var events: [String]

    static func parse(_ d: ConfigReader, name: String, events: [String]) throws -> DestinationConfig {
        let kind = try d.required("kind") { try d.oneOf($0, ["mqtt", "http"]) }
        var c = DestinationConfig(name: name, kind: Kind(rawValue: kind)!, events: events)
        c.tlsCA = try d.nonEmptyString("tls_ca")
        if let ca = c.tlsCA, !ca.hasPrefix("/") { throw d.error("tls_ca", "must be an absolute path, got \"\(ca)\"") }
        c.credentials = try d.nonEmptyString("credentials")
        if let file = c.credentials, !file.hasPrefix("/") {
            throw d.error("credentials", "must be an absolute path, got \"\(file)\"")
        }
        if let list = try d.stringList("events") {
            try UplinkConfig.checkEvents(list, d, "events")
            c.events = list
        }
        switch c.kind {
        case .mqtt:
            c.host = try d.required("host", d.nonEmptyString)
            c.port = try d.int("port", in: 1...65535) ?? (c.tlsCA == nil ? 1883 : 8883)
            c.clientID = try d.nonEmptyString("client_id")
            if let keepalive = try d.duration("keepalive") {
                guard keepalive >= .seconds(5), keepalive <= .seconds(65535) else {
                    throw d.error("keepalive", "must be 5s to 65535s, got \(keepalive)")
                }
                c.keepalive = keepalive
            }
            c.topic = try d.nonEmptyString("topic") ?? c.topic
            c.statusTopic = try d.nonEmptyString("status_topic") ?? c.statusTopic
            for (key, value) in [("topic", c.topic), ("status_topic", c.statusTopic)] {
                if let problem = Topic.problem(value) { throw d.error(key, problem) }
            }
        case .http:
            c.url = try d.required("url", d.nonEmptyString)
            guard c.url.hasPrefix("http://") || c.url.hasPrefix("https://") else {
                throw d.error("url", "must start with http:// or https://, got \(BerthError.quote(c.url))")
            }
            if let timeout = try d.duration("timeout") {
                guard timeout >= .milliseconds(100), timeout <= .seconds(600) else {
                    throw d.error("timeout", "must be 100ms to 10m, got \(timeout)")
                }
                c.timeout = timeout
            }
        }
        return c
    }

    /// The destination as ExportConfig writes it: never the credentials (`credentials: true` only for the state
    /// folder's record of imported destinations, which is the daemon's user's alone).
    func node(credentials withCredentials: Bool = false) -> ConfigNode {
        var pairs: [(String, ConfigNode)] = [("kind", .string(kind.rawValue))]
        switch kind {
        case .mqtt:
            pairs += [("host", .string(host)), ("port", .int(port))]
            if let clientID { pairs.append(("client_id", .string(clientID))) }
            pairs += [
                ("keepalive", .plain(UplinkConfig.text(keepalive))), ("topic", .string(topic)),
                ("status_topic", .string(statusTopic)),
            ]
        case .http:
            pairs += [("url", .string(url)), ("timeout", .plain(UplinkConfig.text(timeout)))]
        }
        if let tlsCA { pairs.append(("tls_ca", .string(tlsCA))) }
        pairs.append(("events", .list(events.map(ConfigNode.string))))
        if withCredentials, let credentials { pairs.append(("credentials", .string(credentials))) }
        return .map(pairs)
    }

    /// A URL for people: mqtt[s]://host:port or the HTTP URL.
    var displayURL: String {
        switch kind {
        case .mqtt: "\(tlsCA == nil ? "mqtt" : "mqtts")://\(host):\(port)"
        case .http: url
        }
    }

    /// Equal but for the route: what a delivery worker uses.
    func sameConnection(_ other: DestinationConfig) -> Bool {
        var a = self
        var b = other
        a.events = []
        b.events = []
        return a == b
    }

    func routes(_ event: String) -> Bool { events.contains { EventName.matches(pattern: $0, event) } }
}
