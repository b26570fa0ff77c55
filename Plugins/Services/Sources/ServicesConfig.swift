import BerthKit

/// The `services:` section:
///
///     services:
///       autolaunch: [nameserver, laser]
///       units:
///         laser: { exec: [python3, -m, laser], ready: notify, restart: on-failure }
///
/// Strict: unknown keys are errors with file and line, and every autolaunch name must be defined (in `units` or by
/// `Define`, whose definitions are passed in as `defined`).
struct ServicesConfig: Sendable, Equatable {
    var autolaunch: [String] = []
    /// Definitions from the file, in file order.
    var units: [ServiceDefinition] = []

    static func parse(_ node: ConfigNode?, logDirectory: String, defined: Set<String> = []) throws -> ServicesConfig {
        var config = ServicesConfig()
        guard let node else { return config }
        let reader = try ConfigReader(node, path: "services")
        if let units = try reader.reader("units") {
            for entry in units.entries() {
                config.units.append(
                    try ServiceDefinition.parse(
                        name: entry.key, node: entry.value, path: units.keyPath(entry.key), logDirectory: logDirectory))
            }
        }
        let autolaunch = try reader.stringList("autolaunch") ?? []
        let known = defined.union(config.units.map(\.name))
        var seen: Set<String> = []
        for name in autolaunch where seen.insert(name).inserted {
            guard known.contains(name) else {
                throw reader.error(
                    "autolaunch", "\"\(name)\" is not a defined service (define it under services.units)")
            }
            config.autolaunch.append(name)
        }
        try reader.finish()
        return config
    }

    /// The section as `ExportConfig` writes it.
    static func node(autolaunch: [String], units: [ServiceDefinition]) -> ConfigNode {
        .map([
            ("autolaunch", .list(autolaunch.map(ConfigNode.string))),
            ("units", .map(units.map { ($0.name, $0.node) })),
        ])
    }
}
