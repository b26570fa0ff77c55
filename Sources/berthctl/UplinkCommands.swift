import ArgumentParser
import BerthKit
import Glibc

/// berthctl uplink: where berth's events go off the host, and what is waiting to go.
struct UplinkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "uplink", abstract: "Events off the host: destinations, the outbox, test and flush.",
        subcommands: [Status.self, Flush.self, Test.self, Pending.self])

    static let path = "/org/berth/Berth1/uplink"
    static let interface = "org.berth.Berth1.Uplink"

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The destinations (connected or not), messages pending and dropped, the last error.")
        @OptionGroup var bus: BusOptions

        func run() async throws {
            try await CLI.withConnection(bus) { connection in
                let p = try await connection.berthProperties(UplinkCommand.path, UplinkCommand.interface)
                let rows = (p["Destinations"]?.items ?? []).map { ($0.items ?? []) }
                let pending = p["Pending"]?.uint64 ?? 0
                let dropped = p["Dropped"]?.uint64 ?? 0
                let last = p["LastDeliveryUSec"]?.uint64 ?? 0
                let error = p["LastError"]?.string ?? ""
                if bus.json {
                    let destinations = rows.map { r in
                        JSON.object([
                            ("name", JSON(r[0])), ("kind", JSON(r[1])), ("url", JSON(r[2])), ("connected", JSON(r[3])),
                        ])
                    }
                    return print(
                        JSON.object([
                            ("destinations", .array(destinations)), ("pending", .int(Int64(pending))),
                            ("dropped", .int(Int64(dropped))), ("last_delivery_usec", .int(Int64(last))),
                            ("last_error", .string(error)),
                        ]).text)
                }
                Output.table(
                    ["DESTINATION", "KIND", "URL", "CONNECTED"],
                    rows.map {
                        [$0[0].string ?? "", $0[1].string ?? "", $0[2].string ?? "", $0[3].bool == true ? "yes" : "no"]
                    },
                    empty: "no destinations configured (uplink.destinations in berth.yaml)")
                print("pending: \(pending)  dropped: \(dropped)")
                print("last delivery: \(last == 0 ? "never" : RecorderTime.text(last))")
                if !error.isEmpty { print("last error: \(error)") }
            }
        }
    }

    struct Flush: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send everything pending now (ends any retry wait); waits until the outbox is empty.")
        @OptionGroup var bus: BusOptions

        func run() async throws {
            try await CLI.run(bus) { try await UplinkCommand.runJob(bus, "Flush", [], what: "uplink flush") }
        }
    }

    struct Test: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send a test message to DESTINATION and wait for its confirmation.")
        @OptionGroup var bus: BusOptions
        @Argument(help: "A destination name (berthctl uplink status lists them).") var destination: String

        func run() async throws {
            try await CLI.run(bus) {
                try await UplinkCommand.runJob(
                    bus, "Test", [.string(destination)], what: "uplink test of \"\(destination)\"")
            }
        }
    }

    struct Pending: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The messages waiting in the outbox, oldest first.")
        @OptionGroup var bus: BusOptions
        @Option(name: .short, help: "At most this many (0: the daemon's default of 100).") var n: UInt32 = 0

        func run() async throws {
            try await CLI.withConnection(bus) { connection in
                let reply = try await connection.berth(
                    UplinkCommand.path, UplinkCommand.interface, "ListPending", [.uint32(n)])
                let rows = (reply.first?.items ?? []).map { $0.items ?? [] }
                if bus.json {
                    return Output.json(
                        ["id", "destination", "event", "created_usec", "attempts", "last_error"],
                        rows.map { $0.map(JSON.init) })
                }
                Output.table(
                    ["ID", "DESTINATION", "EVENT", "CREATED", "ATTEMPTS", "LAST ERROR"],
                    rows.map {
                        [
                            $0[0].string ?? "", $0[1].string ?? "", $0[2].string ?? "",
                            RecorderTime.text($0[3].uint64 ?? 0), String($0[4].uint32 ?? 0), $0[5].string ?? "",
                        ]
                    }, empty: "nothing pending")
            }
        }
    }

    /// Starts a job method and follows it to its end; a result other than done exits non-zero with its error.
    static func runJob(_ bus: BusOptions, _ member: String, _ args: [DBusValue], what: String) async throws {
        let connection = try BusTarget.resolve(bus).connect()
        let follower = try await JobFollower.subscribe(connection)
        let reply = try await connection.berth(path, interface, member, args)
        let result = try await follower.follow(reply, what: what)
        let message = result == "done" ? "" : await follower.errorMessage(reply)
        if bus.json {
            print(JSON.object([("result", .string(result)), ("error", .string(message))]).text)
        } else if result == "done" {
            print("\(what): done")
        }
        if result != "done" { throw CLIError("\(what) \(result): \(message)") }
    }
}

extension UplinkCommand {
    /// `recorder check` rows (name, status, message) for the uplink destinations, when the plugin runs: `ok` when
    /// connected, `warn` when not (the messages wait; the check itself does not fail for it).
    static func reachability(_ connection: BusConnection) async -> [[String]] {
        guard let p = try? await connection.berthProperties(path, interface) else { return [] }
        let pending = p["Pending"]?.uint64 ?? 0
        return (p["Destinations"]?.items ?? []).map { $0.items ?? [] }.filter { $0.count == 4 }.map { row in
            let (name, url) = (row[0].string ?? "", row[2].string ?? "")
            return row[3].bool == true
                ? ["uplink \(name)", "ok", "connected to \(url)"]
                : ["uplink \(name)", "warn", "\(url) is not reachable now; \(pending) messages wait in the outbox"]
        }
    }
}

extension Doctor {
    /// With the uplink plugin active: can each destination be reached now (its `connected` flag, else the last
    /// error)? Unreachable is a warning: the messages wait in the outbox.
    func uplinkDestinations(_ connection: BusConnection) async -> [DoctorCheck] {
        guard let p = try? await connection.berthProperties(UplinkCommand.path, UplinkCommand.interface) else {
            return []
        }
        let pending = p["Pending"]?.uint64 ?? 0
        let error = p["LastError"]?.string ?? ""
        return (p["Destinations"]?.items ?? []).map { $0.items ?? [] }.filter { $0.count == 4 }.map { row in
            let (name, url) = (row[0].string ?? "", row[2].string ?? "")
            if row[3].bool == true { return .ok("uplink \(name)", "connected to \(url)") }
            let reason = error.contains("\"\(name)\"") ? ": \(error)" : ""
            return .warn(
                "uplink \(name)", "\(url) is not reachable now (\(pending) messages pending)\(reason)",
                fix: "check the destination and its credentials file, then `berthctl uplink test \(name)`")
        }
    }
}
