/// What a plugin gets from the daemon: its config section, folders, logger, object-path root, the bus and jobs.
public final class PluginContext: Sendable {
    public enum Mode: String, Sendable { case session, system }

    public let id: String
    /// The plugin's config section at start (nil when absent); later sections arrive through `reload`.
    public let config: ConfigNode?
    /// `<state dir>/<id>`, created before start: persistent data.
    public let stateDirectory: String
    /// `<runtime dir>/<id>`, created before start: sockets, pid files; gone at reboot.
    public let runtimeDirectory: String
    public let logger: Logger
    /// `/org/berth/Berth1/<id>`: the plugin's objects live at and below this path.
    public let objectRoot: String
    public let connection: BusConnection
    public let jobs: JobRegistry
    public let mode: Mode
    private let peers: @Sendable (String) -> (any BerthPlugin)?
    private let importer: @Sendable (String, Bool, Bool) async throws -> [ConfigChange]

    public init(
        id: String, config: ConfigNode?, stateDirectory: String, runtimeDirectory: String, logger: Logger,
        connection: BusConnection, jobs: JobRegistry, mode: Mode, peers: @escaping @Sendable (String) -> (any BerthPlugin)?,
        importer: @escaping @Sendable (String, Bool, Bool) async throws -> [ConfigChange]
    ) {
        self.id = id
        self.config = config
        self.stateDirectory = stateDirectory
        self.runtimeDirectory = runtimeDirectory
        self.logger = logger
        self.objectRoot = "/org/berth/Berth1/" + id
        self.connection = connection
        self.jobs = jobs
        self.mode = mode
        self.peers = peers
        self.importer = importer
    }

    /// Exports an object (announced through ObjectManager). `path` must be `objectRoot` or below it.
    public func export(path: String, interfaces: [BusInterface]) async throws -> BusObject {
        guard path == objectRoot || path.hasPrefix(objectRoot + "/") else {
            throw BerthError.invalidArgument("plugin \"\(id)\" may not export \(path): it is outside \(objectRoot)")
        }
        return try await connection.export(path: path, interfaces: interfaces)
    }

    /// The path of a child object named `name` (escaped): `objectRoot/<escaped name>`.
    public func childPath(_ name: String) -> String { BusPath.encode(objectRoot, name) }

    /// Starts a job owned by this plugin (see `JobRegistry.start`).
    public func startJob(_ operation: String, _ body: @escaping @Sendable (Job) async throws -> Void) async throws -> Job {
        try await jobs.start(plugin: id, operation: operation, body)
    }

    /// Imports a config file exactly as the Manager's `ImportConfig(path, replace, dry_run)` does: every item of
    /// every section is checked before anything changes (pickup's `config` target).
    public func importConfig(path: String, replace: Bool, dryRun: Bool) async throws -> [ConfigChange] {
        try await importer(path, replace, dryRun)
    }

    /// Another active plugin, for cooperation through protocols BerthKit declares (e.g. pickup → services).
    public func peer(_ id: String) -> (any BerthPlugin)? { peers(id) }
}
