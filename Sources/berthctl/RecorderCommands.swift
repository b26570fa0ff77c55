import ArgumentParser
import BerthKit
import Glibc

/// berthctl recorder: acoupi's commands (`check`, `deployment start|stop|status`) and the recordings.
struct RecorderCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recorder", abstract: "Scheduled audio recording (acoupi): checks, deployments, recordings.",
        subcommands: [
            Check.self, RecorderDeploymentCommand.self, Recordings.self, Delete.self, Rescan.self, RecordNow.self,
        ])

    static let path = "/org/berth/Berth1/recorder"
    static let interface = "org.berth.Berth1.Recorder"

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the health checks: prints \"Health checks passed\" or one line per failure (exit 1).")
        @OptionGroup var bus: BusOptions

        func run() async throws {
            try await CLI.withConnection(bus) { connection in
                let reply = try await connection.berth(RecorderCommand.path, RecorderCommand.interface, "Check")
                let passed = reply.first?.bool ?? false
                var rows = (reply.last?.items ?? []).map { ($0.items ?? []).map { $0.string ?? "" } }
                let uplink = await UplinkCommand.reachability(connection)  // where the recordings' news goes
                rows += uplink
                if bus.json {
                    Output.json(["name", "status", "message"], rows.map { $0.map(JSON.string) })
                } else if passed {
                    print("Health checks passed")
                    for row in uplink { print("\(row[0]): \(row[2])") }
                } else {
                    for row in rows where row[1] != "ok" { print("\(row[0]): \(row[2])") }
                }
                if !passed { throw ExitCode(1) }
            }
        }
    }

    struct Recordings: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List recordings, newest first (--oldest-first to reverse), kept and deleted.",
            discussion: """
                -n N shows the newest N (with --oldest-first, the oldest N). STATUS is pending (processing or the \
                saving filters still to come), kept, or deleted with the reason (saving filters, deleted by request, \
                low disk, missing: the file was removed by hand). --since takes microseconds since the epoch, a \
                UTC time (2026-05-01, 2026-05-01T06:30), or an age (90s, 10m, 2h, 3d).
                """)
        @OptionGroup var bus: BusOptions
        @Option(name: .long, help: "Only recordings that started at or after this time.") var since: String?
        @Option(name: .short, help: "At most this many recordings (0: the daemon's default of 1000).") var n: UInt32 = 0
        @Flag(name: .long, help: "Oldest first.") var oldestFirst = false
        @Flag(name: .long, help: "Leave out deleted recordings.") var kept = false

        func run() async throws {
            try await CLI.run(bus) {
                let sinceUSec = try since.map(RecorderTime.parse) ?? 0
                let connection = try BusTarget.resolve(bus).connect()
                let options: [(String, DBusValue)] = [
                    ("since_usec", .uint64(sinceUSec)), ("limit", .uint32(n)), ("newest_first", .bool(!oldestFirst)),
                    ("include_deleted", .bool(!kept)),
                ]
                let reply = try await connection.berth(
                    RecorderCommand.path, RecorderCommand.interface, "QueryRecordings", [.vardict(options)])
                let rows = (reply.first?.items ?? []).map { $0.stringKeyed ?? [:] }
                let keys = [
                    "id", "path", "start_usec", "duration_usec", "sample_rate", "status", "deleted_usec", "reason",
                    "detections", "processing",
                ]
                if bus.json {
                    return Output.json(keys, rows.map { row in keys.map { row[$0].map(JSON.init) ?? .null } })
                }
                Output.table(
                    ["ID", "START (UTC)", "SECONDS", "RATE", "STATUS", "DETECTIONS", "PATH"],
                    rows.map { f in
                        let status = f["status"]?.string ?? ""
                        let reason = f["reason"]?.string ?? ""
                        return [
                            f["id"]?.string ?? "", RecorderTime.text(f["start_usec"]?.uint64 ?? 0),
                            String(Double(f["duration_usec"]?.uint64 ?? 0) / 1e6), "\(f["sample_rate"]?.uint32 ?? 0)",
                            status == "deleted" && !reason.isEmpty ? "deleted (\(reason))" : status,
                            "\(f["detections"]?.uint32 ?? 0)", f["path"]?.string ?? "",
                        ]
                    }, empty: "no recordings")
            }
        }
    }

    struct Rescan: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check that every recording's file exists; mark those removed by hand deleted (missing).")
        @OptionGroup var bus: BusOptions

        func run() async throws {
            try await CLI.withConnection(bus) { connection in
                let reply = try await connection.berth(RecorderCommand.path, RecorderCommand.interface, "Rescan")
                let missing = reply.first?.uint32 ?? 0
                if bus.json { return print(JSON.object([("missing", .int(Int64(missing)))]).text) }
                print(missing == 0 ? "Every recording's file is in place" : "\(missing) recording(s) missing, marked deleted")
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a recording's file; its row stays, marked \"deleted by request\".")
        @OptionGroup var bus: BusOptions
        @Argument(help: "The recording's id (from `berthctl recorder recordings`).") var id: String

        func run() async throws {
            try await CLI.withConnection(bus) { connection in
                _ = try await connection.berth(
                    RecorderCommand.path, RecorderCommand.interface, "DeleteRecording", [.string(id)])
                if bus.json { return print(JSON.object([("deleted", .string(id))]).text) }
                print("Recording \(id) deleted")
            }
        }
    }

    struct RecordNow: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "record-now", abstract: "Record SECONDS now, wait for the file and print its path.")
        @OptionGroup var bus: BusOptions
        @Argument(help: "Length of the recording in seconds.") var seconds: Double

        func run() async throws {
            try await CLI.withConnection(bus) { connection in
                let saved = try await RecorderJobWaiter.run(connection, seconds: seconds)
                if bus.json { return print(JSON.object([("path", .string(saved))]).text) }
                print(saved)
            }
        }
    }
}

/// Starts `RecordNow` and waits for its job: the job's `Log` line `saved <id> <path> (...)` names the file. Ctrl-C
/// cancels the job, which stops the recording and keeps what was captured.
enum RecorderJobWaiter {
    /// What the job said so far.
    private final class Heard: @unchecked Sendable {
        var saved: String?
        var canceled = false
    }

    static func run(_ connection: BusConnection, seconds: Double) async throws -> String {
        // Subscribed before the call, so nothing the job says is missed.
        let follower = try await JobFollower.subscribe(connection)
        let reply = try await connection.berth(
            RecorderCommand.path, RecorderCommand.interface, "RecordNow", [.double(seconds)])
        let (id, path) = (reply.first?.uint32 ?? 0, reply.last?.string ?? "")
        let heard = Heard()
        let following = Task { () async throws -> String in
            try await follower.follow(reply, what: "record-now") { signal in
                if signal.path == path, signal.member == "Log", let line = signal.arguments.first?.string,
                    line.hasPrefix("saved ")
                {
                    heard.saved = line.split(separator: " ").dropFirst(2).first.map(String.init)
                }
                // A canceled job ends at once; the recorder saves what it captured a moment later.
                if heard.canceled, signal.path == RecorderCommand.path, signal.member == "RecordingSaved" {
                    heard.saved = signal.arguments.dropFirst().first?.string
                    return .stop(result: "canceled")
                }
                guard signal.member == "JobRemoved", signal.arguments.first?.uint32 == id else { return .keepWaiting }
                let result = signal.arguments.last?.string ?? ""
                if result == "canceled" {
                    heard.canceled = true
                    return heard.saved == nil ? .keepWaitingAfterEnd : .stop(result: result)
                }
                return .stop(result: result)
            }
        }
        let interrupt = Interrupt {
            Task {
                _ = try? await connection.call(Berth.name, path, "org.berth.Berth1.Job", "Cancel")
                try? await Task.sleep(for: .seconds(5))  // the recorder's time to save what it has
                following.cancel()
            }
        }
        defer { interrupt.cancel() }
        let result: String
        do {
            result = try await following.value
        } catch  where heard.canceled {
            result = "canceled"
        }
        if result == "done", let saved = heard.saved { return saved }
        if heard.canceled {
            throw CLIError(
                heard.saved.map { "record-now canceled: the audio recorded until then is in \($0)" }
                    ?? "record-now canceled before any audio was saved")
        }
        let message = await follower.errorMessage(reply)
        throw CLIError("record-now \(result): \(message.isEmpty ? "job \(id) ended without a file" : message)")
    }
}

/// Times for `--since` and listings.
enum RecorderTime {
    static func parse(_ text: String) throws -> UInt64 {
        if let usec = UInt64(text) { return usec }
        let now = UInt64(time(nil)) * 1_000_000
        if let unit = text.last, let amount = Double(text.dropLast()), amount >= 0,
            let scale = ["s": 1.0, "m": 60, "h": 3600, "d": 86400][String(unit)]
        {
            return now - min(now, UInt64(amount * scale * 1e6))
        }
        // YYYY-MM-DD, then optionally T or a space and HH:MM[:SS], in UTC.
        let parts = text.split(whereSeparator: { "-T :".contains($0) }).map { Int($0) }
        if [3, 5, 6].contains(parts.count), !parts.contains(nil) {
            let p = parts.map { $0! }
            var t = tm()
            t.tm_year = Int32(p[0] - 1900)
            t.tm_mon = Int32(p[1] - 1)
            t.tm_mday = Int32(p[2])
            if p.count > 3 {
                t.tm_hour = Int32(p[3])
                t.tm_min = Int32(p[4])
            }
            if p.count > 5 { t.tm_sec = Int32(p[5]) }
            let seconds = timegm(&t)
            if seconds >= 0, (1...12).contains(p[1]), (1...31).contains(p[2]) { return UInt64(seconds) * 1_000_000 }
        }
        throw CLIError(
            "--since \"\(text)\" is not microseconds, a UTC time such as 2026-05-01T06:30, or an age such as 2h")
    }

    static func text(_ usec: UInt64) -> String {
        var seconds = time_t(usec / 1_000_000)
        var t = tm()
        gmtime_r(&seconds, &t)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return
            "\(t.tm_year + 1900)-\(two(t.tm_mon + 1))-\(two(t.tm_mday)) \(two(t.tm_hour)):\(two(t.tm_min)):\(two(t.tm_sec))"
    }
}
