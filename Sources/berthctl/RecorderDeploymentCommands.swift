import ArgumentParser
import BerthKit
import Glibc

/// berthctl recorder deployment start|stop|status (acoupi's `deployment` commands).
struct RecorderDeploymentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deployment", abstract: "Start, stop or show the field deployment.",
        subcommands: [Start.self, Stop.self, Status.self])

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start a deployment; asks for what is missing when run on a terminal, as acoupi does.")
        @OptionGroup var bus: BusOptions
        @Option(name: .long, help: "Name of the deployment.") var name: String?
        @Option(name: .long, parsing: .unconditional, help: "Latitude of the device, -90 to 90.")
        var latitude: Double?
        @Option(name: .long, parsing: .unconditional, help: "Longitude of the device, -180 to 180.")
        var longitude: Double?
        @Flag(name: .long, help: "Start even when a health check fails.") var force = false

        func run() async throws {
            try await CLI.withConnection(bus) { connection in
                if self.name == nil || self.latitude == nil || self.longitude == nil {
                    // Before asking anything: a second deployment is refused anyway.
                    let reply = try await connection.berth(RecorderCommand.path, RecorderCommand.interface, "Status")
                    let status = (reply.first?.stringKeyed ?? [:]).mapValues(\.unwrapped)
                    if status["deployment"]?.string == "active" {
                        throw CLIError(
                            "a deployment is already active (\"\(status["deployment.name"]?.string ?? "")\"): stop it "
                                + "first with `berthctl recorder deployment stop`")
                    }
                }
                let name = try self.name ?? Prompt.ask("name", "Deployment name")
                let latitude = try self.latitude ?? Prompt.number("latitude", "Latitude", in: -90...90)
                let longitude = try self.longitude ?? Prompt.number("longitude", "Longitude", in: -180...180)
                let options: DBusValue = .vardict(force ? [("force", .bool(true))] : [])
                let reply = try await connection.berth(
                    RecorderCommand.path, RecorderCommand.interface, "StartDeployment",
                    [.string(name), .double(latitude), .double(longitude), options], timeout: .seconds(60))
                let id = reply.first?.string ?? ""
                if bus.json { return print(JSON.object([("id", .string(id))]).text) }
                print("Deployment \"\(name)\" started (\(id)) at \(latitude), \(longitude)")
            }
        }
    }

    struct Stop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop the deployment; the file in progress is kept.")
        @OptionGroup var bus: BusOptions

        func run() async throws {
            try await CLI.withConnection(bus) { connection in
                _ = try await connection.berth(
                    RecorderCommand.path, RecorderCommand.interface, "StopDeployment", timeout: .seconds(60))
                if !bus.json { print("Deployment stopped") }
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Report the daemon, the workers, the program and the deployment, honestly.",
            discussion: "Exits 3 when the recorder, its workers or the program is not ok (as systemctl is-active does)."
        )
        @OptionGroup var bus: BusOptions

        func run() async throws {
            try await CLI.withConnection(bus) { connection in
                let reply = try await connection.berth(RecorderCommand.path, RecorderCommand.interface, "Status")
                let status = (reply.first?.stringKeyed ?? [:]).mapValues(\.unwrapped)
                if bus.json {
                    print(JSON.object(status.keys.sorted().map { ($0, JSON(status[$0]!)) }).text)
                } else {
                    for line in Self.report(status) { print(line) }
                }
                // Like `systemctl is-active`: 3 when something is not running as it should, so scripts can tell.
                if !Self.isHealthy(status) { throw ExitCode(3) }
            }
        }

        /// The daemon's recorder is active, its workers and the program ok.
        static func isHealthy(_ s: [String: DBusValue]) -> Bool {
            s["daemon"]?.string == "active" && s["workers"]?.string == "ok" && s["program"]?.string == "ok"
        }

        /// acoupi's four headings with berth's detail under each.
        static func report(_ s: [String: DBusValue]) -> [String] {
            func text(_ key: String) -> String { s[key].map { $0.string ?? $0.description } ?? "" }
            var lines = ["daemon:      status: \(text("daemon"))"]
            lines.append("workers:     status: \(text("workers"))")
            lines.append("  capture:   \(text("workers.capture"))")
            lines.append("  writer:    \(text("workers.writer"))")
            lines.append("program:     status: \(text("program"))")
            for problem in s["program.problems"]?.items?.compactMap(\.string) ?? [] { lines.append("  - \(problem)") }
            if text("deployment") == "active" {
                let started = RecorderTime.text(s["deployment.started_usec"]?.uint64 ?? 0)
                lines.append("deployment:  status: active")
                lines.append("  name:      \(text("deployment.name")) (\(text("deployment.id")))")
                lines.append("  location:  \(text("deployment.latitude")), \(text("deployment.longitude"))")
                lines.append("  started:   \(started) UTC")
            } else {
                lines.append("deployment:  status: inactive")
            }
            let reason = text("state_reason")
            lines.append("recorder:    \(text("state"))\(reason.isEmpty ? "" : ": " + reason)")
            lines.append("  schedule:  \(text("schedule"))")
            let last = text("last_recording")
            lines.append("  recordings: \(text("recordings_count"))\(last.isEmpty ? "" : ", last " + last)")
            lines.append("  overruns:  \(text("overruns")); free: \(text("free_bytes")) bytes")
            if s["recordings_pending"] != nil {
                lines.append(
                    "  processing: \(text("recordings_pending")) pending, \(text("recordings_processed")) processed, "
                        + "\(text("recordings_failed")) failed; \(text("recordings_kept")) kept, "
                        + "\(text("recordings_deleted")) deleted")
            }
            for error in s["errors"]?.items?.compactMap(\.string) ?? [] { lines.append("  error: \(error)") }
            return lines
        }
    }
}

/// Questions on a terminal; a clear error otherwise (a script must pass the options).
enum Prompt {
    static func ask(_ option: String, _ question: String) throws -> String {
        guard isatty(0) == 1 else {
            throw CLIError("--\(option) is required (standard input is not a terminal, so berthctl cannot ask for it)")
        }
        while true {
            var text = "\(question): "
            _ = text.withUTF8 { write(1, $0.baseAddress, $0.count) }
            guard let line = readLine() else { throw CLIError("no \(option) given") }
            let answer = line.trimmingCharacters(in: " \t")
            if !answer.isEmpty { return answer }
        }
    }

    /// A number in `range`, asked again until the answer is one (each answer is checked as it is given).
    static func number(_ option: String, _ question: String, in range: ClosedRange<Double>) throws -> Double {
        while true {
            let answer = try ask(option, question)
            guard let value = Double(answer), value.isFinite else {
                Output.line("\"\(answer)\" is not a number")
                continue
            }
            if range.contains(value) { return value }
            Output.line("\(option) must be from \(range.lowerBound) to \(range.upperBound), not \(answer)")
        }
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let c = s.first, set.contains(c) { s = s.dropFirst() }
        while let c = s.last, set.contains(c) { s = s.dropLast() }
        return String(s)
    }
}
