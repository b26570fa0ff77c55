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

    /// The program and pid behind a bus client's unique name (`:1.44`), from the bus driver and /proc; empty and 0
    /// when it is gone or cannot be asked.
    static func describePeer(_ connection: BusConnection, _ unique: String) async -> (program: String, pid: UInt32) {
        guard !unique.isEmpty,
            let reply = try? await connection.call(
                "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetConnectionUnixProcessID",
                [.string(unique)], timeout: .seconds(2)),
            let pid = reply.first?.uint32, pid > 0
        else { return ("", 0) }
        let comm = (try? FileSystem.readKernelText("/proc/\(pid)/comm")) ?? nil
        return (String((comm ?? "?").split(separator: "\n").first ?? "?"), pid)
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
        try await CLI.withConnection(bus) { connection in
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
                // A lock's holder as a person knows it: the program and its pid, which the bus knows.
                let holder = await ServicesBus.describePeer(connection, props["LockedBy"]?.string ?? "")
                rows[rows.count - 1] += [.string(holder.program), .int(Int64(holder.pid))]
                // What waits on what: the order (after/requires) and what a start is waiting for now.
                func names(_ key: String) -> JSON { .array((props[key]?.items ?? []).compactMap(\.string).map(JSON.string)) }
                rows[rows.count - 1] += [names("After"), names("Requires"), names("WaitingFor")]
            }
            if bus.json {
                let keys = [
                    "name", "state", "pid", "active_since_usec", "endpoint", "restarts", "sub_state", "locked_by",
                    "locked_by_program", "locked_by_pid", "after", "requires", "waiting_for",
                ]
                return Output.json(keys, rows)
            }
            let anyLocked = rows.contains { if case .string(let holder) = $0[7] { !holder.isEmpty } else { false } }
            func list(_ j: JSON) -> [String] {
                guard case .array(let items) = j else { return [] }
                return items.compactMap { if case .string(let s) = $0 { s } else { nil } }
            }
            let anyOrder = rows.contains { !list($0[10]).isEmpty || !list($0[11]).isEmpty }
            Output.table(
                ["NAME", "STATE", "PID", "UPTIME", "ENDPOINT", "RESTARTS"] + (anyOrder ? ["WAITS ON"] : [])
                    + (anyLocked ? ["LOCKED BY"] : []),
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
                    let waiting = list(r[12])
                    let state = waiting.isEmpty ? text(r[1]) : "\(text(r[1])) (waiting for \(waiting.joined(separator: ", ")))"
                    var row = [text(r[0]), state, pid, ServicesBus.uptime(since: since), endpoint, text(r[5])]
                    if anyOrder {
                        let order = list(r[11]).map { "requires \($0)" } + list(r[10]).map { "after \($0)" }
                        row.append(order.isEmpty ? "-" : order.joined(separator: ", "))
                    }
                    if anyLocked {
                        let unique = text(r[7])
                        row.append(
                            unique.isEmpty ? "-" : text(r[8]).isEmpty ? unique : "\(text(r[8])) (pid \(text(r[9])), \(unique))")
                    }
                    return row
                }, empty: "no services defined")
        }
    }
}
