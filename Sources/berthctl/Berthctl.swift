import ArgumentParser
import Dispatch
import BerthKit
import Glibc

/// The entry point is synchronous: `--version`, and `status` on a bus of this machine, are answered before the Swift
/// concurrency runtime starts its threads (an async `main` starts the cooperative pool and libdispatch's manager
/// first: four threads for one line of output, and a hop between threads for every call). Every other command runs
/// in a task while the main thread services the main queue, as an async `main` would.
@main
enum BerthctlEntry {
    static func main() {
        let arguments = Berthctl.movingGlobalOptions(Array(CommandLine.arguments.dropFirst()))
        if arguments == ["--version"] {
            print(BerthVersion.string)
            return
        }
        // Not with -H or --hosts: those go through Fleet (one berthctl per host, or the bus over SSH).
        if (try? Fleet.Scan(arguments))?.remote == false, let (status, result) = StatusCommand.runBlocking(arguments) {
            guard case .failure(let error) = result else { return }
            Task {
                do { try await status.report(error) } catch { Berthctl.exit(withError: error) }
                exit(0)
            }
            dispatchMain()
        }
        Task {
            if let status = await Fleet.run(arguments) { exit(status) }  // several hosts, or -H with --json
            if await !Berthctl.runFast(arguments) { await Berthctl.main(arguments) }
            exit(0)
        }
        dispatchMain()
    }
}

struct Berthctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "berthctl",
        abstract: "Control berthd, the berth host daemon, over D-Bus.",
        version: BerthVersion.string,
        subcommands: [
            UpCommand.self, DownCommand.self, ReloadCommand.self, StatusCommand.self, PluginsCommand.self, JobsCommand.self,
            MonitorCommand.self, ConfigCommand.self, ServicesCommand.self, PickupCommand.self, InstancesCommand.self,
            RecorderCommand.self, UplinkCommand.self, DoctorCommand.self,
        ])

    /// berthctl's start is mostly the argument parser building its tree of every command (each a conformance look-up
    /// in the runtime): `--version` needs none of it, and a command such as `status` or `services start NAME` needs
    /// only its own branch, parsed with that command as the root. Anything the branch does not parse (help, a
    /// mistake) goes the whole way, so usage and error messages stay those of `berthctl`.
    static func runFast(_ arguments: [String]) async -> Bool {
        let help: Set<String> = ["-h", "--help", "help", "--generate-completion-script", "--experimental-dump-help"]
        guard let first = arguments.first, !arguments.contains(where: help.contains) else { return false }
        guard let branch = configuration.subcommands.first(where: { $0._commandName == first }) else {
            suggest(first, among: configuration.subcommands, path: "berthctl")
            return false
        }
        if arguments.count > 1, !branch.configuration.subcommands.isEmpty,
            !branch.configuration.subcommands.contains(where: { $0._commandName == arguments[1] })
        {
            suggest(arguments[1], among: branch.configuration.subcommands, path: "berthctl \(first)")
        }
        let command: any ParsableCommand
        do {
            command = try branch.parseAsRoot(Array(arguments.dropFirst()))
        } catch {
            return false
        }
        do {
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                var command = command
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
        return true
    }

    /// An unknown command word close to a real one (`berthctl servces`, `berthctl services strat`): says which was
    /// meant and exits 64 (a usage error), as git does. Options and words far from every command go on to the parser.
    static func suggest(_ word: String, among commands: [any ParsableCommand.Type], path: String) {
        guard !word.hasPrefix("-") else { return }
        let names = commands.map { $0._commandName }
        let scored = names.map { ($0, editDistance(word, $0)) }.sorted { $0.1 < $1.1 }
        guard let best = scored.first, best.1 <= (best.0.count >= 4 ? 2 : 1) else { return }
        CLI.printError("unknown command \"\(word)\" for \(path); did you mean `\(path) \(best.0)`?")
        Glibc.exit(64)
    }

    /// Levenshtein distance between two short words.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var row = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var previous = row[0]
            row[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let current = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                previous = current
            }
        }
        return a.isEmpty ? b.count : row[b.count]
    }

    /// Accepts the shared options before the subcommand too (`berthctl --address X status`, as with busctl) by
    /// moving them after it.
    static func movingGlobalOptions(_ arguments: [String]) -> [String] {
        let flags: Set<String> = ["--user", "--system", "--json", "--verbose"]
        let valued = ["--address", "-H", "--host", "--hosts", "--remote-address", "--ssh-config", "--host-timeout", "--parallel"]
        var moved: [String] = []
        var rest = arguments[...]
        while let first = rest.first {
            if flags.contains(first) {
                moved.append(first)
                rest = rest.dropFirst()
            } else if valued.contains(first), rest.count >= 2 {
                moved += rest.prefix(2)
                rest = rest.dropFirst(2)
            } else if valued.contains(where: { first.hasPrefix($0 + "=") }) || (first.hasPrefix("-H") && first.count > 2) {
                moved.append(first)
                rest = rest.dropFirst()
            } else {
                break
            }
        }
        guard !moved.isEmpty, !rest.isEmpty else { return arguments }
        // Options go after the subcommand path (the leading words that are not options).
        let path = rest.prefix { !$0.hasPrefix("-") }
        return Array(path) + moved + Array(rest.dropFirst(path.count))
    }
}

/// Which bus to talk to, as in busctl, and the output options every command shares.
struct BusOptions: ParsableArguments {
    @Flag(name: .customLong("user"), help: "Talk to the daemon on the user's session bus (the default).")
    var user = false

    @Flag(name: .long, help: "Talk to the system daemon on the system bus.")
    var system = false

    @Option(name: .long, help: "Talk to the daemon on the bus at this D-Bus address.")
    var address: String?

    @Flag(name: .long, help: "Print listings as JSON.")
    var json = false

    @Flag(name: .long, help: "Show D-Bus error names with errors.")
    var verbose = false

    @Option(
        name: [.customShort("H"), .customLong("host")],
        help: ArgumentHelp(
            "Talk to berthd on this host over SSH (systemd-stdio-bridge): [USER@]HOST[:PORT] or a host of hosts.yaml.",
            discussion: "Repeatable: several hosts run in parallel, one row per host.", valueName: "host"))
    var host: [String] = []

    @Option(
        name: .customLong("hosts"),
        help: ArgumentHelp("Run on every host of this group of ~/.config/berth/hosts.yaml (repeatable).", valueName: "group"))
    var groups: [String] = []

    @Option(
        name: .customLong("remote-address"),
        help: ArgumentHelp("With -H: the D-Bus address of the bus on the host (systemd-stdio-bridge --bus-path).",
            valueName: "address"))
    var remoteAddress: String?

    @Option(
        name: .customLong("ssh-config"),
        help: ArgumentHelp("With -H: ssh's config file (ssh -F; default $BERTH_SSH_CONFIG, else the user's SSH config).",
            valueName: "file"))
    var sshConfig: String?

    @Option(
        name: .customLong("host-timeout"),
        help: ArgumentHelp("With -H: seconds a host has to connect, and with several hosts to finish (default 30).",
            valueName: "seconds"))
    var hostTimeout: Double?

    @Option(name: .customLong("parallel"), help: ArgumentHelp("With several hosts: how many run at once (default 16).",
        valueName: "n"))
    var parallel: Int?

    func validate() throws {
        if user && system { throw ValidationError("--user and --system exclude each other") }
        if !host.isEmpty && address != nil {
            throw ValidationError("--address names a bus on this machine; with -H give the host's bus with --remote-address")
        }
        if remoteAddress != nil && host.isEmpty && groups.isEmpty { throw ValidationError("--remote-address needs -H") }
        if host.count > 1 || !groups.isEmpty {
            throw ValidationError("several hosts are run one berthctl per host; give -H and --hosts before the command")
        }
        if let name = host.first { _ = try RemoteHost.resolve(name, self) }
    }
}

/// An error for the user: printed as `berthctl: <message>` with a non-zero exit.
struct CLIError: Error {
    var message: String
    var code: Int32 = 1
    init(_ message: String, code: Int32 = 1) {
        self.message = message
        self.code = code
    }
}

enum CLI {
    /// Runs a command body, turning every error into one line on stderr and an exit code.
    static func run(_ options: BusOptions, _ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as CLIError {
            printError(error.message)
            throw ExitCode(error.code)
        } catch let error as DBusError {
            var text = describe(error, options)
            if SystemdProbe.meansNoAnswer(error), !BusTarget.resolve(options).isRemote, let why = await SystemdProbe.explain(BusTarget.resolve(options)) {
                text += "; " + why
            }
            printError(text)
            throw ExitCode(1)
        } catch let error as ExitCode {
            throw error
        } catch {
            printError(BerthError.wrapping(error).message)
            throw ExitCode(1)
        }
    }

    /// `run` with a connection to berthd's bus (local or through `-H`) made first.
    static func withConnection(_ options: BusOptions, _ body: (BusConnection) async throws -> Void) async throws {
        try await run(options) { try await body(try BusTarget.resolve(options).connect()) }
    }

    static func describe(_ error: DBusError, _ options: BusOptions) -> String {
        var text: String
        switch error.name {
        case "org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner":
            let target = BusTarget.resolve(options)
            let up = if case .remote(let host, _) = target { "berthctl -H \(host.name) up" } else { "berthctl up" }
            text = "berthd is not running on \(target.description) (start it with `\(up)`)"
        case _ where BusTarget.resolve(options).isRemote && error.name.hasPrefix("org.freedesktop.DBus.Error.")
            && ["NoReply", "Timeout", "Disconnected"].contains(error.name.dropFirst(27)):
            // ssh or systemd-stdio-bridge ended: ssh says why on stderr (refused, authentication, no such command).
            let ended = error.name == "org.freedesktop.DBus.Error.Disconnected" || error.message.contains("terminated")
            text = "cannot reach \(BusTarget.resolve(options).description): "
                + (ended ? "the connection ended (ssh could not connect or log in, or systemd-stdio-bridge could not "
                    + "reach the bus there)" : "no answer in time (\(error.message))")
        case "org.freedesktop.DBus.Error.NoReply", "org.freedesktop.DBus.Error.Timeout":
            let target = BusTarget.resolve(options)
            if let pid = DaemonProbe.lockHolder(target.lockFile), pid > 0 {
                text = "berthd (pid \(pid), lock \(target.lockFile)) does not answer on \(target.description): it may "
                    + "be stopped or hung; `berthctl up --force` stops it and starts a new one"
            } else {
                text = "berthd did not answer in time: \(error.message)"
            }
        case "org.freedesktop.DBus.Error.AccessDenied":
            text = "access denied: \(error.message)"
        default:
            text = error.message.isEmpty ? error.name : error.message
        }
        if options.verbose { text += " [\(error.name)]" }
        return text
    }

    static func printError(_ message: String) {
        var line = "berthctl: \(message)\n"
        _ = line.withUTF8 { write(2, $0.baseAddress, $0.count) }
    }
}
