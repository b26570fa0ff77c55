import BerthKit
import Glibc
import Synchronization

/// The running daemon: owns the bus connection, the Manager object, the plugins and the lifecycle.
/// Start: config → lock → bus objects → plugins → name → READY=1. Stop: STOPPING=1 → cancel jobs → stop plugins in
/// reverse order → release the name → exit 0.
final class Daemon: Sendable {
    let options: DaemonOptions
    let paths: DaemonPaths
    let connection: BusConnection
    let jobs: JobRegistry
    let logger = Logger(label: "berthd")
    private let gate = AsyncLock()
    private let state: Mutex<State>
    private let shutdown: (stream: AsyncStream<Int32>, continuation: AsyncStream<Int32>.Continuation)

    struct State {
        var config: DaemonConfig
        var records: [PluginRecord] = []
        var manager: BusObject?
        var stopping = false
    }

    init(options: DaemonOptions, paths: DaemonPaths, config: DaemonConfig, connection: BusConnection) {
        self.options = options
        self.paths = paths
        self.connection = connection
        self.jobs = JobRegistry(connection: connection, logger: Logger(label: "berth.jobs"), retention: config.jobRetention)
        self.state = Mutex(State(config: config))
        self.shutdown = AsyncStream.makeStream(of: Int32.self)
    }

    /// Parses the command line's world into a running daemon; returns the exit code.
    static func launch(_ options: DaemonOptions, checkOnly: Bool) async -> Int32 {
        do {
            let paths = try DaemonPaths.resolve(options)
            let (config, root) = try await DaemonConfig.read(paths)
            if checkOnly {
                try checkConfig(options: options, config: config, root: root)
                print("\(paths.configFile): configuration is valid")
                return 0
            }
            BerthLogging.bootstrap(level: config.logLevel)
            // Grandchildren of supervised services are re-parented to berthd, which reaps them.
            try Supervisor.becomeSubreaper()
            let lock = try InstanceLock(path: paths.lockFile, guarding: "runtime folder")
            try FileSystem.makeDirectories(paths.stateDir, mode: 0o755)
            let stateLock = try InstanceLock(path: paths.stateLockFile, guarding: "state folder")
            let connection = try BusConnection(options.bus, description: "berthd")
            let daemon = Daemon(options: options, paths: paths, config: config, connection: connection)
            let code = await daemon.run(root: root)
            _ = consume stateLock
            _ = consume lock
            return code
        } catch {
            return fail(error)
        }
    }

    /// EX_CONFIG (sysexits.h): the exit status for an invalid configuration. Both units list it in
    /// `RestartPreventExitStatus=`, so systemd does not restart berthd into the same error every `RestartSec=`.
    static let configErrorStatus: Int32 = 78

    /// Writes a fatal start error to stderr and returns the exit status: 78 for a configuration error, else 1.
    /// Under systemd (`JOURNAL_STREAM` set) the line carries the syslog priority `<3>` (err), as the log handler's
    /// lines do, so `journalctl -p err` shows it.
    static func fail(_ error: any Error) -> Int32 {
        let error = BerthError.wrapping(error)
        var line = "\(getenv("JOURNAL_STREAM") != nil ? "<3>" : "")berthd: \(error.message)\n"
        _ = line.withUTF8 { write(2, $0.baseAddress, $0.count) }
        return error.code == .invalidConfig ? configErrorStatus : 1
    }

    /// `--check-config`: core keys, unknown sections and every loadable plugin's section.
    private static func checkConfig(options: DaemonOptions, config: DaemonConfig, root: ConfigNode?) throws {
        let (files, _) = discover(options: options, config: config)
        var plugins: [String: any BerthPlugin] = [:]
        for file in files {
            if case .success(let plugin) = PluginLoader.load(file) { plugins[plugin.id] = plugin }
        }
        try config.checkSections(knownPlugins: Set(files.map(PluginLoader.expectedID) + plugins.keys), root: root)
        for (id, plugin) in plugins { try plugin.validate(config: config.sections[id]) }
    }

    static func discover(options: DaemonOptions, config: DaemonConfig) -> ([String], String?) {
        if !options.pluginDirs.isEmpty {
            return (PluginDiscovery.files(in: options.pluginDirs.map(FileSystem.absolute), developmentDir: nil), nil)
        }
        if !config.pluginDirs.isEmpty {
            return (PluginDiscovery.files(in: config.pluginDirs.map(FileSystem.absolute), developmentDir: nil), nil)
        }
        let (dirs, dev) = PluginDiscovery.defaultDirs()
        return (PluginDiscovery.files(in: dirs, developmentDir: dev), dev)
    }

    // MARK: Run

    func run(root: ConfigNode?) async -> Int32 {
        connection.setDisconnectHandler { [self] in
            logger.critical("lost the connection to \(options.bus)")
            shutdown.continuation.yield(1)
        }
        do {
            try await connection.addObjectManager(path: ManagerInterface.path)
            let manager = try await connection.export(
                path: ManagerInterface.path,
                interfaces: [
                    ManagerInterface.make(
                        daemon: self, mode: options.mode, configPath: paths.configFile, pid: UInt32(getpid()))
                ], announce: false)
            jobs.attach(manager: manager)
            state.withLock { $0.manager = manager }
            let config = state.withLock { $0.config }
            try await loadPlugins(config: config, root: root)
            for record in PluginDiscovery.startOrder(records) { await start(record, section: config.sections[record.id]) }
            try await connection.requestName("org.berth.Berth1")
        } catch {
            let code = Self.fail(error)
            await stopPlugins()
            return code
        }
        SignalThread.setHandler { [self] signal in handle(signal: signal) }
        ServiceManagerNotify.startWatchdog(on: connection)
        manager?.set("State", .string("running"))
        let active = records.filter(\.isActive).count
        ServiceManagerNotify.send("READY=1\nSTATUS=running, \(active) of \(records.count) plugins active")
        logger.info("berthd \(BerthVersion.string) running on \(options.bus), \(active) of \(records.count) plugins active")

        var code: Int32 = 0
        for await exitCode in shutdown.stream {
            code = exitCode
            break
        }
        await stop()
        return code
    }

    func withState<T: Sendable>(_ body: (inout State) -> T) -> T { state.withLock { body(&$0) } }

    func withGate<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        try await gate.withLock(body)
    }

    private var records: [PluginRecord] { state.withLock { $0.records } }
    private var manager: BusObject? { state.withLock { $0.manager } }

    private func handle(signal: Int32) {
        switch signal {
        case SIGHUP:
            Task {
                do { try await reload() } catch { logger.error("reload on SIGHUP failed: \(BerthError.wrapping(error).message)") }
            }
        case SIGUSR2:
            Task { for record in records where record.isActive { await record.plugin?.reopenLogs() } }
        default:
            requestShutdown(reason: signal == SIGINT ? "SIGINT" : "SIGTERM")
        }
    }

    func requestShutdown(reason: String) {
        logger.info("shutting down: \(reason)")
        shutdown.continuation.yield(0)
    }

    private func stop() async {
        state.withLock { $0.stopping = true }
        manager?.set("State", .string("stopping"))
        ServiceManagerNotify.send("STOPPING=1\nSTATUS=stopping")
        jobs.cancelAll()
        await stopPlugins()
        await connection.releaseName("org.berth.Berth1")
        connection.close()
        logger.info("stopped")
    }

    /// Stops every plugin in reverse start order; no retry starts one again after this.
    private func stopPlugins() async {
        state.withLock { $0.stopping = true }
        for record in records { record.cancelRetry(resetBackoff: false) }
        for record in PluginDiscovery.startOrder(records).reversed() { await stopPlugin(record) }
    }
}
