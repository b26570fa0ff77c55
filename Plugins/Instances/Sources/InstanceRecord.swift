import BerthKit

/// What the plugin remembers of one instance, written atomically to `var/instances/<id>.json`: its config, its
/// port, whether it should be running (instances that were running start again after a daemon restart), and the
/// marks a crash may leave half-way (`destroying`, a deploy not yet switched).
struct InstanceRecord: Sendable, Equatable {
    var id: String
    var config: InstanceConfig
    var port: Int = 0
    /// The owner wants it running (set by Start, cleared by Stop).
    var running = false
    /// Started at least once: `stopped` rather than `created` when not running.
    var everStarted = false
    /// Destroy began: the next start finishes it.
    var destroying = false
    /// Made by a rolling deploy that has not switched the front end yet: the next start destroys it unless the
    /// switch happened. `replaces` names the instances the deploy stops once switched.
    var deployPending = false
    var replaces: [String] = []
    var createdUSec: UInt64 = 0
    /// When the front end last switched to it (a deploy, Switch, Rollback to it kept its time): the application's
    /// history of what served, newest last, is its instances ordered by this. 0: not in the history (never
    /// served, or rolled back from: a Rollback leaves the release it replaces out of the history).
    var servedUSec: UInt64 = 0

    var application: String { config.application }

    var json: JSONText {
        .object([
            ("id", .string(id)), ("config", config.json), ("port", .int(Int64(port))), ("running", .bool(running)),
            ("ever_started", .bool(everStarted)), ("destroying", .bool(destroying)),
            ("deploy_pending", .bool(deployPending)), ("replaces", .array(replaces.map { .string($0) })),
            ("created_usec", .string(String(createdUSec))), ("served_usec", .string(String(servedUSec))),
        ])
    }

    static func parse(_ text: String, file: String, defaults: HealthSpec) throws -> InstanceRecord {
        let node = try YAMLParser.parseJSON(text, source: file)
        let reader = try ConfigReader(node, path: "")
        let id = try reader.required("id", reader.nonEmptyString)
        guard let configNode = reader.node("config") else { throw reader.error("config", "missing") }
        var record = InstanceRecord(id: id, config: try InstanceConfig.parse(configNode, defaults: defaults))
        record.port = try reader.int("port", in: 0...65535) ?? 0
        record.running = try reader.bool("running") ?? false
        record.everStarted = try reader.bool("ever_started") ?? false
        record.destroying = try reader.bool("destroying") ?? false
        record.deployPending = try reader.bool("deploy_pending") ?? false
        record.replaces = try reader.stringList("replaces") ?? []
        record.createdUSec = UInt64(try reader.string("created_usec") ?? "0") ?? 0
        if let served = try reader.string("served_usec") {
            record.servedUSec = UInt64(served) ?? 0
        } else if record.everStarted && !record.deployPending {
            record.servedUSec = record.createdUSec  // a record from before the history: in order of creation
        }
        try reader.finish()
        return record
    }
}
