import BerthKit
import Glibc

/// berthd's entry point. The main thread parses the command line, starts the daemon in a detached task and then
/// waits for signals itself with `sigwaitinfo`: the daemon's signals are blocked in every thread (CBerthdEarly
/// blocks them before main), and the main thread never parks in libdispatch's `sigsuspend`, which would unblock
/// them and let SIGTERM's default action kill the daemon.
///
/// The command line is parsed by hand: swift-argument-parser pulls in FoundationEssentials, which costs the
/// daemon about 3 MB of resident memory and part of its start time for a handful of flags.
@main
enum BerthdMain {
    static func main() {
        SignalThread.blockDaemonSignals()
        let command: BerthdCommand
        do {
            command = try BerthdCommand(arguments: Array(CommandLine.arguments.dropFirst()))
        } catch let error as BerthdCommand.Exit {
            var text = error.message + "\n"
            _ = text.withUTF8 { write(error.code == 0 ? 1 : 2, $0.baseAddress, $0.count) }
            Glibc.exit(error.code)
        } catch {
            Glibc.exit(2)
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

struct BerthdCommand {
    static let usage = """
        usage: berthd [--session | --system | --address ADDR] [--config PATH] [--plugin-dir DIR]...
                      [--state-dir DIR] [--runtime-dir DIR] [--check-config] [--version] [--help]
        """

    static let help = """
        berthd — the berth host daemon: owns org.berth.Berth1 on D-Bus and runs its plugins.

        \(usage)

          --session            use the session bus (the default)
          --system             use the system bus and the system paths
          --address ADDR       connect to the bus at this D-Bus address instead (with --system: the
                               system paths on that bus)
          --config PATH        the config file (default: the mode's berth.yaml)
          --plugin-dir DIR     load plugins from this folder (repeatable; replaces the defaults)
          --state-dir DIR      the state folder (default: the mode's)
          --runtime-dir DIR    the runtime folder holding the lock (default: the mode's)
          --check-config       check the config files and exit: 0 when valid
          --version            print the version
          --help               print this help

        Session mode uses XDG folders: $XDG_CONFIG_HOME/berth/berth.yaml (+ conf.d/*.yaml),
        $XDG_STATE_HOME/berth and $XDG_RUNTIME_DIR/berth. System mode uses /etc/berth, /var/lib/berth
        and /run/berth. Every path can be overridden.
        """

    /// `--help`/`--version` (code 0) or a usage error (code 64, EX_USAGE), with its text.
    struct Exit: Error {
        var code: Int32
        var message: String
    }

    var session = false
    var system = false
    var address: String?
    var config: String?
    var pluginDirs: [String] = []
    var stateDir: String?
    var runtimeDir: String?
    var checkConfig = false

    init(arguments: [String]) throws {
        var rest = arguments[...]
        func value(_ option: String) throws -> String {
            guard let next = rest.popFirst(), !next.hasPrefix("--") else {
                throw Exit(code: 64, message: "berthd: \(option) needs a value\n\(Self.usage)")
            }
            return next
        }
        while let argument = rest.popFirst() {
            var name = argument
            if let eq = argument.firstIndex(of: "="), argument.hasPrefix("--") {
                name = String(argument[..<eq])
                rest.insert(String(argument[argument.index(after: eq)...]), at: rest.startIndex)
            }
            switch name {
            case "--session": session = true
            case "--system": system = true
            case "--address": address = try value(name)
            case "--config": config = try value(name)
            case "--plugin-dir": pluginDirs.append(try value(name))
            case "--state-dir": stateDir = try value(name)
            case "--runtime-dir": runtimeDir = try value(name)
            case "--check-config": checkConfig = true
            case "--version": throw Exit(code: 0, message: BerthVersion.string)
            case "--help", "-h": throw Exit(code: 0, message: Self.help)
            default: throw Exit(code: 64, message: "berthd: unknown argument \"\(argument)\"\n\(Self.usage)")
            }
        }
        if session && system { throw Exit(code: 64, message: "berthd: --session and --system exclude each other") }
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
