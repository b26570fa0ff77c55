import ArgumentParser
import BerthKit
import Glibc

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show the daemon, its plugins and jobs.")
    @OptionGroup var bus: BusOptions

    func run() async throws {
        try await CLI.withConnection(bus) { connection in
            // A stopped, hung or failing daemon is told within 3 s (2 s for the first answer, then the lock file or
            // systemd is asked), not after the bus's 25 s call timeout. The calls go out together: one round trip
            // for the Manager, one for the lists, one for the plugins' messages.
            let manager = try await connection.berthProperties(Berth.root, Berth.manager, timeout: .seconds(2))
            async let pluginRows = PluginsCommand.fetch(connection)
            async let jobRows = JobsCommand.fetch(connection)
            let (plugins, jobs) = try await (pluginRows, jobRows)
            render(manager: manager, plugins: plugins, jobs: jobs)
        }
    }

    /// Prints what status shows, however it was fetched.
    func render(manager: [String: DBusValue], plugins: [[String]], jobs: [[String]]) {
        if bus.json {
            print(JSON.object([
                ("version", JSON(manager["Version"] ?? .string(""))), ("state", JSON(manager["State"] ?? .string(""))),
                ("mode", JSON(manager["Mode"] ?? .string(""))), ("pid", JSON(manager["DaemonPID"] ?? .uint32(0))),
                ("config", JSON(manager["ConfigPath"] ?? .string(""))), ("bus", .string(BusTarget.resolve(bus).description)),
                ("plugins", .array(plugins.map { .object(zip(PluginsCommand.keys, $0.map(JSON.string)).map { ($0, $1) }) })),
                ("jobs", .array(jobs.map { .object(zip(JobsCommand.keys, $0.map(JSON.string)).map { ($0, $1) }) })),
            ]).text)
            return
        }
        let active = plugins.filter { $0[2] == "active" }.count
        print("berthd \(manager["Version"]?.string ?? "?") (pid \(manager["DaemonPID"]?.uint32 ?? 0)) \(manager["State"]?.string ?? "?") on \(BusTarget.resolve(bus).description), \(manager["Mode"]?.string ?? "?") mode")
        print("config: \(manager["ConfigPath"]?.string ?? "")")
        print("plugins: \(active) active of \(plugins.count)")
        for row in plugins {
            print("  \(row[0])  \(row[2])\(row[4].isEmpty ? "" : ": " + row[4])")
        }
        print("jobs: \(jobs.isEmpty ? "none" : String(jobs.count))")
        for row in jobs { print("  \(row[0])  \(row[1]) \(row[2])") }
    }

    /// `berthctl status` on a bus of this machine, run on the main thread before the concurrency runtime starts, with
    /// a blocking client (`BlockingBusClient`): no bus thread and no hops between threads, so it costs about what one
    /// `busctl call` does. Returns nil when `arguments` are not such a status; any error (no bus, no answer within
    /// 2 s, an error reply) is returned with the command, to be reported as the async command reports it (`report`),
    /// without asking again.
    static func runBlocking(_ arguments: [String]) -> (command: StatusCommand, result: Result<Void, any Error>)? {
        guard arguments.first == "status", let command = try? StatusCommand.parse(Array(arguments.dropFirst())) else {
            return nil
        }
        do {
            guard let address = BusTarget.resolve(command.bus).busAddress else {
                _ = try BusTarget.resolve(command.bus).connect()  // throws the message that says how to start one
                return (command, .success(()))
            }
            let client = try BlockingBusClient(address, description: "berthctl")
            let reply = try client.call(
                Berth.name, Berth.root, "org.freedesktop.DBus.Properties", "GetAll", [.string(Berth.manager)],
                timeout: .seconds(2))
            let manager = (reply.first?.stringKeyed ?? [:]).mapValues(\.unwrapped)
            let listed = try client.call(Berth.name, Berth.root, Berth.manager, "ListPlugins").first?.items ?? []
            let plugins = try listed.map { item in
                let f = (item.items ?? []).map { $0.string ?? "" }
                let message = try client.getProperty(Berth.name, f[3], "org.berth.Berth1.Plugin", "LastErrorMessage")
                return [f[0], f[1], f[2], f[3], message.string ?? ""]
            }
            let jobs = JobsCommand.rows(try client.call(Berth.name, Berth.root, Berth.manager, "ListJobs"))
            command.render(manager: manager, plugins: plugins, jobs: jobs)
            return (command, .success(()))
        } catch {
            return (command, .failure(error))
        }
    }

    /// Says what went wrong in `runBlocking` exactly as `run` would (the lock file, systemd, the exit code).
    func report(_ error: any Error) async throws {
        try await CLI.run(bus) { throw error }
    }
}

struct PluginsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugins", abstract: "List plugins and their state, or restart one.",
        subcommands: [PluginsListCommand.self, PluginsRestartCommand.self], defaultSubcommand: PluginsListCommand.self)
    static let keys = ["id", "version", "state", "path", "error"]

    /// id, version, state, object path, error message.
    static func fetch(_ connection: BusConnection) async throws -> [[String]] {
        let reply = try await connection.manager("ListPlugins")
        let listed = (reply.first?.items ?? []).map { item in (item.items ?? []).map { $0.string ?? "" } }
        // Every plugin's message at once (in order), not one round trip after another.
        return try await withThrowingTaskGroup(of: (Int, String).self) { group in
            for (index, f) in listed.enumerated() {
                group.addTask {
                    let message = try await connection.berthProperty(f[3], "org.berth.Berth1.Plugin", "LastErrorMessage")
                    return (index, message.string ?? "")
                }
            }
            var messages = Array(repeating: "", count: listed.count)
            for try await (index, message) in group { messages[index] = message }
            return listed.enumerated().map { index, f in [f[0], f[1], f[2], f[3], messages[index]] }
        }
    }
}

struct PluginsListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List plugins and their state (the default).")
    @OptionGroup var bus: BusOptions

    func run() async throws {
        try await CLI.run(bus) {
            let rows = try await PluginsCommand.fetch(try BusTarget.resolve(bus).connect())
            if bus.json { return Output.json(PluginsCommand.keys, rows.map { $0.map(JSON.string) }) }
            Output.table(["ID", "VERSION", "STATE", "ERROR"], rows.map { [$0[0], $0[1].isEmpty ? "-" : $0[1], $0[2], $0[4]] },
                empty: "no plugins loaded")
        }
    }
}

struct PluginsRestartCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restart", abstract: "Stop a plugin if it is active and start it again (Manager.RestartPlugin).",
        discussion: "Also brings back a plugin whose start failed, without waiting for its automatic retry.")
    @OptionGroup var bus: BusOptions
    @Argument(help: "The plugin's id (see `berthctl plugins`).") var id: String

    func run() async throws {
        try await CLI.withConnection(bus) { connection in
            _ = try await connection.manager("RestartPlugin", [.string(id)], timeout: .seconds(120))
            let state = try await connection.berthProperty(
                Berth.root + "/plugin/" + id, "org.berth.Berth1.Plugin", "State").string ?? "?"
            if bus.json { return Output.line(JSON.object([("id", .string(id)), ("state", .string(state))]).text) }
            print("plugin \(id) restarted: \(state)")
        }
    }
}

struct JobsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "jobs", abstract: "List running jobs.")
    @OptionGroup var bus: BusOptions
    static let keys = ["id", "plugin", "operation", "path"]

    static func fetch(_ connection: BusConnection) async throws -> [[String]] {
        rows(try await connection.manager("ListJobs"))
    }

    /// id, plugin, operation, object path of each job in a `ListJobs` reply.
    static func rows(_ reply: [DBusValue]) -> [[String]] {
        (reply.first?.items ?? []).map { item in
            let f = item.items ?? []
            return ["\(f[0].uint32 ?? 0)", f[1].string ?? "", f[2].string ?? "", f[3].string ?? ""]
        }
    }

    func run() async throws {
        try await CLI.run(bus) {
            let rows = try await Self.fetch(try BusTarget.resolve(bus).connect())
            if bus.json { return Output.json(Self.keys, rows.map { [.int(Int64($0[0]) ?? 0)] + $0.dropFirst().map(JSON.string) }) }
            Output.table(["ID", "PLUGIN", "OPERATION", "PATH"], rows, empty: "no jobs running")
        }
    }
}

struct MonitorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "monitor", abstract: "Print each signal berthd emits as it arrives, until interrupted.")
    @OptionGroup var bus: BusOptions

    func run() async throws {
        try await CLI.withConnection(bus) { connection in
            let stream = try await connection.signals(sender: Berth.name)
            for await signal in stream {
                if bus.json {
                    Output.line(JSON.object([
                        ("time_usec", .int(Int64(SystemClock.wallUSec()))), ("path", .string(signal.path)),
                        ("interface", .string(signal.interface)), ("member", .string(signal.member)),
                        ("args", .array(signal.arguments.map(JSON.init))),
                    ]).text)
                } else {
                    let args = signal.arguments.map(\.description).joined(separator: " ")
                    Output.line("\(signal.path) \(signal.interface).\(signal.member) \(args)")
                }
            }
        }
    }
}
