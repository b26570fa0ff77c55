import ArgumentParser
import BerthKit
import Glibc

/// berthctl instances: sarge's commands on the instances plugin.
struct InstancesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "instances", abstract: "App instances and rolling deployments (the instances plugin).",
        subcommands: [
            InstancesNew.self, InstancesList.self, InstancesStart.self, InstancesStop.self, InstancesDestroy.self,
            InstancesLogs.self, InstancesDeploy.self, InstancesRollback.self, InstancesSwitch.self,
            InstancesReopenLogs.self,
        ])
}

enum Instances {
    static let path = "/org/berth/Berth1/instances"
    static let interface = "org.berth.Berth1.Instances"
    static let instanceInterface = "org.berth.Berth1.Instance"

    /// Calls a method that returns a job and waits for it, printing each Log line; fails with the job's error.
    static func runJob(_ connection: BusConnection, _ member: String, _ args: [DBusValue], quiet: Bool = false)
        async throws
    {
        let follower = try await JobFollower.subscribe(connection)
        let reply = try await connection.berth(path, interface, member, args)
        guard let jobPath = reply.dropFirst().first?.string else { throw CLIError("\(member) returned no job") }
        let result = try await follower.follow(reply, what: "instances \(member.lowercased())") { signal in
            if !quiet && signal.path == jobPath && signal.member == "Log" {
                Output.line(signal.arguments.first?.string ?? "")
            }
            return .keepWaiting
        }
        guard result == "done" else {
            let message = await follower.errorMessage(reply)
            throw CLIError(message.isEmpty ? "job \(jobPath) ended \(result)" : message)
        }
    }
}

struct InstancesNew: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new", abstract: "Create an instance from a JSON config; prints its id.")
    @OptionGroup var bus: BusOptions
    @Argument(help: "The config, e.g. '{\"application_name\": \"web\"}'.") var json: String

    func run() async throws {
        try await CLI.run(bus) {
            let reply = try await BusTarget.resolve(bus).connect().berth(
                Instances.path, Instances.interface, "New", [.string(json)])
            print(reply.first?.string ?? "")
        }
    }
}

struct InstancesList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List instances.")
    @OptionGroup var bus: BusOptions

    func run() async throws {
        try await CLI.withConnection(bus) { connection in
            let reply = try await connection.berth(Instances.path, Instances.interface, "List")
            var rows: [[String]] = []
            for item in reply.first?.items ?? [] {
                let f = item.items ?? []
                let path = f[3].string ?? ""
                let props = try await connection.berthProperties(path, Instances.instanceInterface)
                rows.append([
                    f[0].string ?? "", f[1].string ?? "", f[2].string ?? "", "\(props["MainPID"]?.uint32 ?? 0)",
                    "\(props["Port"]?.uint64 ?? 0)", props["Active"]?.bool == true ? "yes" : "",
                    props["Folder"]?.string ?? "",
                ])
            }
            let keys = ["id", "application", "state", "pid", "port", "active", "folder"]
            if bus.json { return Output.json(keys, rows.map { $0.map(JSON.string) }) }
            Output.table(
                ["ID", "APPLICATION", "STATE", "PID", "PORT", "ACTIVE"], rows.map { Array($0.prefix(6)) },
                empty: "no instances")
        }
    }
}

struct InstanceIDArgument: ParsableArguments {
    @Argument(help: "The instance id, e.g. web-jCCbfV.") var id: String
}

struct InstancesStart: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "start", abstract: "Start an instance.")
    @OptionGroup var bus: BusOptions
    @OptionGroup var target: InstanceIDArgument
    func run() async throws {
        try await CLI.run(bus) {
            try await Instances.runJob(BusTarget.resolve(bus).connect(), "Start", [.string(target.id)])
        }
    }
}

struct InstancesStop: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stop", abstract: "Stop an instance.")
    @OptionGroup var bus: BusOptions
    @OptionGroup var target: InstanceIDArgument
    func run() async throws {
        try await CLI.run(bus) {
            try await Instances.runJob(BusTarget.resolve(bus).connect(), "Stop", [.string(target.id)])
        }
    }
}

struct InstancesDestroy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "destroy",
        abstract: "Stop an instance and remove it with its folder and logs.",
        discussion: """
            The instance that serves its application (the front end points at it) is refused: switch to another \
            first (switch, deploy, rollback), or pass --force.
            """)
    @OptionGroup var bus: BusOptions
    @OptionGroup var target: InstanceIDArgument
    @Flag(
        help: """
            Destroy it even if it serves: the front end first switches to another running instance of the \
            application that passes its health check; without one, nothing serves, and that is said.
            """)
    var force = false
    func run() async throws {
        try await CLI.run(bus) {
            try await Instances.runJob(
                BusTarget.resolve(bus).connect(), force ? "ForceDestroy" : "Destroy", [.string(target.id)])
        }
    }
}

struct InstancesSwitch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switch",
        abstract: "Point the front end at an instance you made and started, once its health check passes.",
        discussion: """
            sarge's rolling steps by hand: instances new, copy the code into its folder, instances start, then \
            instances switch ID; stop the instance that served before when it has drained.
            """)
    @OptionGroup var bus: BusOptions
    @OptionGroup var target: InstanceIDArgument
    func run() async throws {
        try await CLI.run(bus) {
            try await Instances.runJob(BusTarget.resolve(bus).connect(), "Switch", [.string(target.id)])
        }
    }
}

struct InstancesDeploy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy", abstract: "Rolling deploy of a folder or .tar/.tar.gz with a server at its root.")
    @OptionGroup var bus: BusOptions
    @Argument(help: "The application name.") var application: String
    @Argument(help: "A folder or a .tar/.tar.gz archive.") var source: String
    @Option(help: "Health check: http:/PATH, tcp, exec:COMMAND or none.") var health: String?
    @Option(help: "Old instances to keep stopped for rollback.") var keep: UInt32?
    @Option(help: "How long the check may take to pass (e.g. 30s).") var timeout: String?
    @Option(name: .customLong("min-ready"), help: "How long the check must keep passing (e.g. 1s).") var minReady:
        String?
    @Option(help: "The new instance's JSON config.") var config: String?

    func run() async throws {
        try await CLI.run(bus) {
            var options: [(String, DBusValue)] = []
            if let health { options.append(("health", .string(health))) }
            if let keep { options.append(("keep", .uint32(keep))) }
            if let timeout { options.append(("timeout", .string(timeout))) }
            if let minReady { options.append(("min_ready", .string(minReady))) }
            if let config { options.append(("config", .string(config))) }
            let path = FileSystem.absolute(source)
            try await Instances.runJob(
                BusTarget.resolve(bus).connect(), "Deploy", [.string(application), .string(path), .vardict(options)])
        }
    }
}

struct InstancesRollback: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Bring back the release that served before the current one (a second rollback goes further back).")
    @OptionGroup var bus: BusOptions
    @Argument(help: "The application name.") var application: String
    func run() async throws {
        try await CLI.run(bus) {
            try await Instances.runJob(BusTarget.resolve(bus).connect(), "Rollback", [.string(application)])
        }
    }
}

struct InstancesReopenLogs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reopen-logs", abstract: "Reopen every instance log (after an external logrotate).")
    @OptionGroup var bus: BusOptions
    func run() async throws {
        try await CLI.run(bus) {
            _ = try await BusTarget.resolve(bus).connect().berth(Instances.path, Instances.interface, "ReopenLogs")
            print("reopened every instance log")
        }
    }
}
