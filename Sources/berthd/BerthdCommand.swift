import ArgumentParser
import BerthKit
import Glibc

@main
struct BerthdCommand: AsyncParsableCommand {
    /// Blocks the daemon's signals before any thread exists, so that only the signal thread receives them.
    static func main() async {
        SignalThread.blockDaemonSignals()
        await main(nil)
    }

    static let configuration = CommandConfiguration(
        commandName: "berthd",
        abstract: "The berth host daemon: owns org.berth.Berth1 on D-Bus and runs its plugins.",
        discussion: """
            Session mode (the default) uses XDG folders: $XDG_CONFIG_HOME/berth/berth.yaml (+ conf.d/*.yaml),
            $XDG_STATE_HOME/berth and $XDG_RUNTIME_DIR/berth. System mode uses /etc/berth, /var/lib/berth
            and /run/berth. Every path can be overridden.
            """,
        version: BerthVersion.string)

    @Flag(name: .long, help: "Use the session bus (the default).")
    var session = false

    @Flag(name: .long, help: "Use the system bus and the system paths.")
    var system = false

    @Option(name: .long, help: "Connect to the bus at this D-Bus address instead.")
    var address: String?

    @Option(name: .long, help: "The config file (default: the mode's berth.yaml).")
    var config: String?

    @Option(name: .customLong("plugin-dir"), help: "Load plugins from this folder (repeatable; replaces the defaults).")
    var pluginDirs: [String] = []

    @Option(name: .customLong("state-dir"), help: "The state folder (default: the mode's).")
    var stateDir: String?

    @Option(name: .customLong("runtime-dir"), help: "The runtime folder holding the lock (default: the mode's).")
    var runtimeDir: String?

    @Flag(name: .customLong("check-config"), help: "Check the config files and exit: 0 when valid.")
    var checkConfig = false

    func validate() throws {
        if session && system { throw ValidationError("--session and --system exclude each other") }
    }

    func run() async throws {
        let mode: PluginContext.Mode = system ? .system : .session
        let bus: BusAddress = address.map { .address($0) } ?? (system ? .system : .session)
        let options = DaemonOptions(
            mode: mode, bus: bus, configFile: config, pluginDirs: pluginDirs, stateDir: stateDir,
            runtimeDir: runtimeDir)
        let code = await Daemon.launch(options, checkOnly: checkConfig)
        Glibc.exit(code)
    }
}

struct DaemonOptions: Sendable {
    var mode: PluginContext.Mode
    var bus: BusAddress
    var configFile: String?
    var pluginDirs: [String]
    var stateDir: String?
    var runtimeDir: String?
}
