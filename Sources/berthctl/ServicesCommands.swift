import ArgumentParser
import BerthKit
import Glibc

/// berthctl services: the services plugin (see Plugins/Services/README.md).
struct ServicesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "services", abstract: "List, start, stop, look up, define and lock supervised services.",
        subcommands: [
            ServicesList.self, ServicesStart.self, ServicesStop.self, ServicesRestart.self, ServicesLookup.self,
            ServicesLogs.self, ServicesDefine.self, ServicesRemove.self, ServicesLock.self, ServicesUnlock.self,
        ],
        // `berthctl services` lists, as `systemctl` does.
        defaultSubcommand: ServicesList.self)
}

enum ServicesBus {
    static let path = "/org/berth/Berth1/services"
    static let interface = "org.berth.Berth1.Services"
    static let service = "org.berth.Berth1.Service"

    static func call(_ connection: BusConnection, _ member: String, _ args: [DBusValue]) async throws -> [DBusValue] {
        try await connection.berth(path, interface, member, args)
    }

    /// The object path of service `name` (NotFound from the daemon when unknown).
    static func lookup(_ connection: BusConnection, _ name: String) async throws -> (path: String, endpoint: String) {
        let reply = try await call(connection, "Lookup", [.string(name)])
        return (reply[0].string ?? "", reply[1].string ?? "")
    }

    /// "3h 2m", "41s": how long since `usec` (a wall-clock time), "-" for 0.
    static func uptime(since usec: UInt64) -> String {
        guard usec > 0 else { return "-" }
        let now = SystemClock.wallUSec()
        let seconds = now > usec ? (now - usec) / 1_000_000 : 0
        if seconds < 60 { return "\(seconds)s" }
        if seconds < 3600 { return "\(seconds / 60)m \(seconds % 60)s" }
        if seconds < 86400 { return "\(seconds / 3600)h \(seconds / 60 % 60)m" }
        return "\(seconds / 86400)d \(seconds / 3600 % 24)h"
    }
}

struct ServicesList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List services: name, state, pid, uptime, endpoint, restarts.")
    @OptionGroup var bus: BusOptions

    func run() async throws {
        try await CLI.run(bus) {
            let connection = try BusTarget.resolve(bus).connect()
            let reply = try await ServicesBus.call(connection, "List", [])
            var rows: [[JSON]] = []
            for item in reply.first?.items ?? [] {
                let f = item.items ?? []
                let props = try await connection.berthProperties(f[3].string ?? "", ServicesBus.service)
                rows.append([
                    .string(f[0].string ?? ""), .string(f[1].string ?? ""), .int(Int64(props["MainPID"]?.uint32 ?? 0)),
                    .int(Int64(props["ActiveSinceUSec"]?.uint64 ?? 0)), .string(f[2].string ?? ""),
                    .int(Int64(props["Restarts"]?.uint32 ?? 0)), .string(props["SubState"]?.string ?? ""),
                    .string(props["LockedBy"]?.string ?? ""),
                ])
            }
            if bus.json {
                let keys = [
                    "name", "state", "pid", "active_since_usec", "endpoint", "restarts", "sub_state", "locked_by",
                ]
                return Output.json(keys, rows)
            }
            Output.table(
                ["NAME", "STATE", "PID", "UPTIME", "ENDPOINT", "RESTARTS"],
                rows.map { r in
                    func text(_ j: JSON) -> String {
                        switch j {
                        case .string(let s): s
                        case .int(let v): "\(v)"
                        default: j.text
                        }
                    }
                    let pid = text(r[2]) == "0" ? "-" : text(r[2])
                    var since: UInt64 = 0
                    if case .int(let v) = r[3] { since = UInt64(v) }
                    let endpoint = text(r[4]).isEmpty ? "-" : text(r[4])
                    return [text(r[0]), text(r[1]), pid, ServicesBus.uptime(since: since), endpoint, text(r[5])]
                }, empty: "no services defined")
        }
    }
}
