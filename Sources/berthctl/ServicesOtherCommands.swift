import ArgumentParser
import BerthKit

struct ServicesLookup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lookup", abstract: "Print a service's object and endpoint.")
    @OptionGroup var bus: BusOptions
    @Argument(help: "The service's name.") var name: String

    func run() async throws {
        try await CLI.run(bus) {
            let (path, endpoint) = try await ServicesBus.lookup(try BusTarget.resolve(bus).connect(), name)
            if bus.json { return print(JSON.object([("path", .string(path)), ("endpoint", .string(endpoint))]).text) }
            print("\(path) \(endpoint.isEmpty ? "-" : endpoint)")
        }
    }
}

struct ServicesLogs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs", abstract: "Print the end of a service's log; -f keeps printing new lines.")
    @OptionGroup var bus: BusOptions
    @Argument(help: "The service's name.") var name: String
    @Option(name: .short, help: "How many lines.") var n: UInt32 = 20
    @Flag(name: .short, help: "Follow: print new lines as they arrive (asks the daemon twice a second).") var f = false

    func run() async throws {
        try await CLI.withConnection(bus) { connection in
            let (path, _) = try await ServicesBus.lookup(connection, name)
            func fetch(_ count: UInt32) async throws -> [String] {
                let reply = try await connection.berth(path, ServicesBus.service, "Logs", [.uint32(count)])
                return (reply.first?.items ?? []).compactMap(\.string)
            }
            var last = try await fetch(n)
            for line in last { Output.line(line) }
            while f {
                try await Task.sleep(for: .milliseconds(500))
                let now = try await fetch(1000)
                // New lines follow the last place where the previous tail's last lines appear (none found: rotated).
                let m = min(last.count, 20)
                var skip = 0
                if m > 0 {
                    for p in stride(from: now.count, through: m, by: -1)
                    where Array(now[(p - m)..<p]) == Array(last.suffix(m)) {
                        skip = p
                        break
                    }
                }
                for line in now.dropFirst(skip) { Output.line(line) }
                if !now.isEmpty { last = now }
            }
        }
    }
}

struct ServicesDefine: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "define", abstract: "Define or replace a service from a YAML spec file (kept after restarts).")
    @OptionGroup var bus: BusOptions
    @Argument(help: "The service's name.") var name: String
    @Argument(help: "A YAML file with the keys of a services.units entry.") var file: String

    func run() async throws {
        try await CLI.run(bus) {
            guard let text = try FileSystem.readText(file) else { throw CLIError("\"\(file)\" does not exist") }
            _ = try await ServicesBus.call(
                try BusTarget.resolve(bus).connect(), "Define", [.string(name), .string(text)])
            print("defined service \"\(name)\"")
        }
    }
}

struct ServicesRemove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove", abstract: "Stop and remove a service defined at run time.")
    @OptionGroup var bus: BusOptions
    @Argument(help: "The service's name.") var name: String

    func run() async throws {
        try await CLI.run(bus) {
            _ = try await ServicesBus.call(try BusTarget.resolve(bus).connect(), "Remove", [.string(name)])
            print("removed service \"\(name)\"")
        }
    }
}

struct ServicesLock: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lock",
        abstract: "Lock a service for this berthctl and hold it until interrupted (the lock drops when it exits).")
    @OptionGroup var bus: BusOptions
    @Argument(help: "The service's name.") var name: String

    func run() async throws {
        try await CLI.withConnection(bus) { connection in
            let (path, _) = try await ServicesBus.lookup(connection, name)
            _ = try await connection.berth(path, ServicesBus.service, "Lock")
            Output.line("locked service \"\(name)\"; press Ctrl-C to release it")
            while true { try await Task.sleep(for: .seconds(3600)) }
        }
    }
}

struct ServicesUnlock: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unlock",
        abstract: "Unlock a service; only its owner can, so this reports who holds a lock held elsewhere.")
    @OptionGroup var bus: BusOptions
    @Argument(help: "The service's name.") var name: String

    func run() async throws {
        try await CLI.withConnection(bus) { connection in
            let (path, _) = try await ServicesBus.lookup(connection, name)
            _ = try await connection.berth(path, ServicesBus.service, "Unlock")
            print("service \"\(name)\" is not locked")
        }
    }
}
