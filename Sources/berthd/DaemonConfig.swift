import BerthKit
import Synchronization

/// berth.yaml: the daemon's own keys, and one section per plugin keyed by the plugin id. Strict: a key that is
/// neither a core key nor the id of a known plugin is an error naming file, key and line.
///
/// ```yaml
/// log_level: info          # trace, debug, info, notice, warning, error, critical
/// plugin_dirs: [/usr/lib/berth/plugins]
/// disabled_plugins: [recorder]
/// job_retention: 5s        # how long a finished job's object stays readable
/// services: { ... }        # the services plugin's section, and so on
/// ```
struct DaemonConfig: Sendable, Equatable {
    static let coreKeys = ["log_level", "plugin_dirs", "disabled_plugins", "job_retention"]
    static let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    var logLevel: Logger.Level = .info
    var pluginDirs: [String] = []
    var disabledPlugins: [String] = []
    var jobRetention: Duration = .seconds(5)
    /// Plugin sections by plugin id (only ids present in the files).
    var sections: [String: ConfigNode] = [:]
    /// The merged tree, for plugins' unknown-key checks.
    var files: [String] = []
    /// Counts reads: of two configs, the one with the higher generation was read later.
    var generation: UInt64 = 0

    private static let generations = Atomic<UInt64>(0)

    /// `load` on a thread of its own, off the cooperative pool: the files are read and parsed there. Only regular
    /// files are read and opening never waits, so a FIFO as berth.yaml or in conf.d is an error naming it at once.
    static func read(_ paths: DaemonPaths) async throws -> (config: DaemonConfig, root: ConfigNode?) {
        try await OSThread.run(name: "berth-config") {
            var (config, root) = try load(paths)
            config.generation = generations.add(1, ordering: .sequentiallyConsistent).newValue
            return (config, root)
        }
    }

    /// Reads the config file and its drop-ins. A missing main file is an empty config.
    static func load(_ paths: DaemonPaths) throws -> (config: DaemonConfig, root: ConfigNode?) {
        var root = FileSystem.exists(paths.configFile) ? try YAMLParser.parseFile(atPath: paths.configFile) : nil
        var files = [paths.configFile]
        for name in FileSystem.list(paths.configDropIns) where name.hasSuffix(".yaml") {
            let path = paths.configDropIns + "/" + name
            root = ConfigNode.merge(root, try YAMLParser.parseFile(atPath: path))
            files.append(path)
        }
        var config = try parseCore(root)
        config.files = files
        return (config, root)
    }

    /// The core keys; plugin sections are collected and checked later against the plugins found.
    static func parseCore(_ root: ConfigNode?) throws -> DaemonConfig {
        var config = DaemonConfig()
        guard let root else { return config }
        let reader = try ConfigReader(root, path: "")
        if let level = try reader.oneOf("log_level", levels) {
            config.logLevel = Logger.Level(rawValue: level) ?? .info
        }
        config.pluginDirs = try reader.stringList("plugin_dirs") ?? []
        config.disabledPlugins = try reader.stringList("disabled_plugins") ?? []
        config.jobRetention = try reader.duration("job_retention") ?? .seconds(5)
        for entry in reader.entries() where !coreKeys.contains(entry.key) {
            config.sections[entry.key] = entry.value
        }
        return config
    }

    /// Fails on a section whose key is no known plugin id.
    func checkSections(knownPlugins: Set<String>, root: ConfigNode?) throws {
        guard case .mapping(let entries, _)? = root else { return }
        for entry in entries where !Self.coreKeys.contains(entry.key) && !knownPlugins.contains(entry.key) {
            let known = (Self.coreKeys + knownPlugins.sorted()).joined(separator: ", ")
            throw BerthError.invalidConfig(
                "\(entry.keyMark): \(entry.key): unknown key \"\(entry.key)\" (known keys: \(known))")
        }
    }
}
