import ArgumentParser
import BerthKit
import Glibc

/// berthd's entry point. The main thread parses the command line, starts the daemon in a detached task and then
/// waits for signals itself with `sigwaitinfo`: the daemon's signals are blocked in every thread (CBerthdEarly
/// blocks them before main), and the main thread never parks in libdispatch's `sigsuspend`, which would unblock
/// them and let SIGTERM's default action kill the daemon.
@main
enum BerthdMain {
    static func main() {
        SignalThread.blockDaemonSignals()
        let command: BerthdCommand
        do {
            command = try BerthdCommand.parse()
            try command.validate()
        } catch {
            BerthdCommand.exit(withError: error)
        }
        let options = command.options
        let checkOnly = command.checkConfig
        Task.detached {
            let code = await Daemon.launch(options, checkOnly: checkOnly)
            Glibc.exit(code)
        }
        SignalThread.waitForSignals()
    }
}

struct BerthdCommand: ParsableCommand {
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

    var options: DaemonOptions {
        DaemonOptions(
            mode: system ? .system : .session, bus: address.map { .address($0) } ?? (system ? .system : .session),
            configFile: config, pluginDirs: pluginDirs, stateDir: stateDir, runtimeDir: runtimeDir)
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
