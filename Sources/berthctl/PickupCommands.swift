import ArgumentParser
import BerthKit
import Glibc

/// berthctl pickup: the hot-deployment folders and their deployments.
struct PickupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pickup", abstract: "Hot deployment: watched folders, deployments, rollback.",
        subcommands: [
            PickupDirsCommand.self, PickupAddCommand.self, PickupRemoveCommand.self, PickupDeployCommand.self,
            PickupHistoryCommand.self, PickupRollbackCommand.self, PickupPauseCommand.self, PickupResumeCommand.self,
            PickupPullCommand.self,
        ])

    static let path = "/org/berth/Berth1/pickup"
    static let interface = "org.berth.Berth1.Pickup"
}

extension BusConnection {
    func pickup(_ member: String, _ args: [DBusValue] = [], timeout: Duration = .seconds(25)) async throws
        -> [DBusValue]
    {
        try await berth(PickupCommand.path, PickupCommand.interface, member, args, timeout: timeout)
    }
}

struct PickupDirsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "dirs", abstract: "List the watched folders.")
    @OptionGroup var bus: BusOptions

    func run() async throws {
        try await CLI.withConnection(bus) { connection in
            let value = try await connection.berthProperty(PickupCommand.path, PickupCommand.interface, "Directories")
            let rows = (value.items ?? []).map { ($0.items ?? []).map { $0.string ?? "" } }
            if bus.json { return Output.json(["name", "path", "target"], rows.map { $0.map(JSON.string) }) }
            Output.table(["NAME", "PATH", "TARGET"], rows, empty: "no folders watched")
        }
    }
}

struct PickupAddCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "add", abstract: "Watch a folder (live, persisted).")
    @OptionGroup var bus: BusOptions
    @Argument(help: "A name for the folder.") var name: String
    @Argument(help: "The folder (made absolute).") var path: String
    @Option(help: "services, config, files or instances/<app>.") var target: String
    @Option(help: "Shell patterns of the files to deploy (repeatable).") var pattern: [String] = []
    @Option(help: "Shell patterns of names to pass over, besides editors' temporaries (repeatable).")
    var ignore: [String] = []
    @Flag(help: "Watch subfolders too.") var recursive = false
    @Flag(help: "Undeploy a file when it is deleted or moved away.") var undeployOnDelete = false
    @Flag(help: "Write NAME.deployed / NAME.failed beside each source.") var markers = false

    func run() async throws {
        try await CLI.run(bus) {
            var options: [(String, DBusValue)] = [
                ("recursive", .bool(recursive)), ("undeploy_on_delete", .bool(undeployOnDelete)),
                ("markers", .bool(markers)),
            ]
            if !pattern.isEmpty { options.append(("patterns", .strings(pattern))) }
            if !ignore.isEmpty { options.append(("ignore", .strings(ignore))) }
            _ = try await BusTarget.resolve(bus).connect().pickup(
                "AddDirectory", [.string(name), .string(FileSystem.absolute(path)), .string(target), .vardict(options)])
        }
    }
}

struct PickupRemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove", abstract: "Stop watching a folder added with add.")
    @OptionGroup var bus: BusOptions
    @Argument var name: String

    func run() async throws {
        try await CLI.run(bus) {
            _ = try await BusTarget.resolve(bus).connect().pickup("RemoveDirectory", [.string(name)])
            print("stopped watching the pickup folder \"\(name)\" (what it deployed stays deployed)")
        }
    }
}

struct PickupDeployCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy", abstract: "Deploy a file now and wait for its result.")
    @OptionGroup var bus: BusOptions
    @Argument(help: "The file to deploy.") var file: String
    @Option(help: "services, config, files or instances/<app> (default: the folder's target, else files).")
    var target: String = ""
    @Option(help: "Seconds to wait for the result.") var timeout: Double = 600
    @Flag(
        help: """
            Pass the file as an open descriptor (DeployFd) rather than its path: berthd need not be able to open it \
            (system mode, another user's file). The target defaults to files.
            """)
    var fd = false

    func run() async throws {
        try await CLI.withConnection(bus) { connection in
            // Subscribe first, so the outcome cannot pass before we listen.
            let signals = try await connection.signals(path: PickupCommand.path, interface: PickupCommand.interface)
            let reply =
                BusTarget.resolve(bus).isRemote
                ? try await deployUpload(connection)
                : fd
                ? try await deployDescriptor(connection)
                : try await connection.pickup(
                    "DeployFile", [.string(FileSystem.absolute(file)), .string(target)], timeout: .seconds(timeout))
            let id = reply.first?.string ?? ""
            // DeployFile replies after the outcome was logged and signalled, and the bus delivers one sender's
            // messages in order: the signal came before the reply. The log is the answer if it was missed.
            let outcome = await Self.outcome(id: id, signals: signals, connection: connection)
            guard let f = outcome else { throw CLIError("deployment \(id) is not in the deployment log") }
            if f.status == "deployed" {
                if bus.json {
                    return print(
                        JSON.object([
                            ("id", .string(f.id)), ("name", .string(f.name)), ("target", .string(f.target)),
                            ("status", .string("deployed")), ("sha256", .string(f.detail)),
                        ]).text)
                }
                return print("deployed \(f.name) to \(f.target) (id \(f.id), sha256 \(f.detail))")
            }
            throw CLIError("deployment \(f.id) of \(f.name) to \(f.target) failed: \(f.detail)")
        }
    }

    /// DeployFd with the file opened here (the bus passes a duplicate; ours is closed after the call).
    func deployDescriptor(_ connection: BusConnection) async throws -> [DBusValue] {
        let descriptor = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY)
        guard descriptor >= 0 else { throw CLIError("cannot open \(file): \(systemErrorText(errno))") }
        defer { close(descriptor) }
        return try await connection.pickup(
            "DeployFd",
            [.unixFD(descriptor), .string(FileSystem.baseName(file)), .string(target.isEmpty ? "files" : target)],
            timeout: .seconds(timeout))
    }

    struct Outcome: Sendable {
        var id, name, target, status, detail: String
    }

    /// The Deployed/DeployFailed signal for `id`, or the log's row for it after a grace period.
    static func outcome(id: String, signals: AsyncStream<BusSignalMessage>, connection: BusConnection) async -> Outcome?
    {
        let fromSignal = await withTaskGroup(of: Outcome?.self) { group in
            group.addTask {
                for await signal in signals where signal.arguments.first?.string == id {
                    let f = signal.arguments.map { $0.string ?? "" }
                    guard f.count >= 4, signal.member == "Deployed" || signal.member == "DeployFailed" else { continue }
                    return Outcome(
                        id: f[0], name: f[1], target: f[2], status: signal.member == "Deployed" ? "deployed" : "failed",
                        detail: f[3])
                }
                return nil
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(3))
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        if let fromSignal { return fromSignal }
        guard let reply = try? await connection.pickup("ListDeployments", [.uint32(1000)]) else { return nil }
        for item in reply.first?.items ?? [] {
            let f = (item.items ?? []).map { $0.string ?? "" }
            if f.count == 7, f[0] == id {
                return Outcome(
                    id: f[0], name: f[1], target: f[2], status: f[3], detail: f[3] == "deployed" ? f[4] : f[6])
            }
        }
        return nil
    }
}

struct PickupHistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history", abstract: "Show the deployment log, newest first.")
    @OptionGroup var bus: BusOptions
    @Option(name: .short, help: "How many entries.") var n: UInt32 = 20

    func run() async throws {
        try await CLI.run(bus) {
            let reply = try await BusTarget.resolve(bus).connect().pickup("ListDeployments", [.uint32(n)])
            let rows = (reply.first?.items ?? []).map { item -> [String] in
                let f = item.items ?? []
                return [
                    f[0].string ?? "", f[1].string ?? "", f[2].string ?? "", f[3].string ?? "", f[4].string ?? "",
                    String(f[5].uint64 ?? 0), f[6].string ?? "",
                ]
            }
            let keys = ["id", "name", "target", "status", "sha256", "time_usec", "error"]
            if bus.json { return Output.json(keys, rows.map { $0.map(JSON.string) }) }
            Output.table(
                ["ID", "NAME", "TARGET", "STATUS", "SHA256", "ERROR"],
                rows.map { [$0[0], $0[1], $0[2], $0[3], String($0[4].prefix(12)), $0[6]] }, empty: "no deployments")
        }
    }
}

struct PickupRollbackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback", abstract: "Deploy the previous version again.")
    @OptionGroup var bus: BusOptions
    @Argument(help: "The artifact's file name.") var name: String
    @Option(help: "Its target (default: the one target it was deployed to).") var target: String?

    func run() async throws {
        try await CLI.withConnection(bus) { connection in
            let target: String
            if let given = self.target { target = given } else { target = try await Self.deployedTarget(of: name, connection) }
            let id = try await connection.pickup("Rollback", [.string(name), .string(target)]).first?.string ?? ""
            let reply = try await connection.pickup("ListDeployments", [.uint32(50)])
            let row = (reply.first?.items ?? []).map { ($0.items ?? []).map { $0.string ?? "" } }.first {
                $0.first == id
            }
            guard let row, row[3] == "deployed" else {
                throw CLIError("rollback of \(name) in \(target) failed (deployment \(id)): \(row?[6] ?? "unknown")")
            }
            print("rolled back \(name) in \(target) (id \(id), sha256 \(row[4]))")
        }
    }

    /// The target `name` was deployed to, from the deployment log: the one there is, else a question for the user.
    static func deployedTarget(of name: String, _ connection: BusConnection) async throws -> String {
        let reply = try await connection.pickup("ListDeployments", [.uint32(100_000)])
        var targets: [String] = []
        for row in (reply.first?.items ?? []).map({ ($0.items ?? []).map { $0.string ?? "" } })
        where row.count > 3 && row[1] == name && row[3] == "deployed" && !targets.contains(row[2]) {
            targets.append(row[2])
        }
        switch targets.count {
        case 1: return targets[0]
        case 0: throw CLIError("\"\(name)\" was never deployed (no target has it in the deployment log)")
        default:
            throw CLIError(
                "\"\(name)\" was deployed to \(targets.count) targets (\(targets.sorted().joined(separator: ", "))): "
                    + "name one with --target")
        }
    }
}

struct PickupPauseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pause", abstract: "Queue changes instead of deploying.")
    @OptionGroup var bus: BusOptions
    func run() async throws { try await CLI.run(bus) { try await setPaused(bus, true) } }
}

struct PickupResumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "resume", abstract: "Deploy queued changes and go on.")
    @OptionGroup var bus: BusOptions
    func run() async throws { try await CLI.run(bus) { try await setPaused(bus, false) } }
}

private func setPaused(_ bus: BusOptions, _ paused: Bool) async throws {
    _ = try await BusTarget.resolve(bus).connect().call(
        Berth.name, PickupCommand.path, "org.freedesktop.DBus.Properties", "Set",
        [.string(PickupCommand.interface), .string("Paused"), .variant(.bool(paused))])
    print(paused ? "pickup paused: changes queue until `berthctl pickup resume`" : "pickup resumed: queued changes deploy now")
}
