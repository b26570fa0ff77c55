import Glibc
import Synchronization

/// Runs short commands (pickup's git, instances' `tar`, front-end reloads and `exec:` health checks) as one-shot
/// units of a supervisor: their own process group, output to a file read back, SIGTERM then SIGKILL when the time
/// limit passes, and gone with the daemon.
public struct CommandRunner: Sendable {
    /// Makes every run's unit name and output file unique, so concurrent runs of one name never share them.
    private static let counter = Mutex<UInt64>(0)

    public let supervisor: Supervisor
    /// Output of each run goes to `<folder>/<name>.<n>.out` while it runs (removed after).
    public let outputFolder: String
    /// How many of the output's last lines an outcome keeps.
    public let outputLines: Int

    public init(supervisor: Supervisor, outputFolder: String, outputLines: Int = 20) {
        self.supervisor = supervisor
        self.outputFolder = outputFolder
        self.outputLines = outputLines
    }

    public struct Outcome: Sendable {
        /// The exit status, or minus the signal that ended it.
        public var status: Int32
        public var output: String
        public var succeeded: Bool { status == 0 }
        /// "exited with status 2: <last output line>"
        public var reason: String {
            let what = status < 0 ? "was killed by signal \(-status)" : "exited with status \(status)"
            let last = output.split(separator: "\n").last.map { ": " + $0 } ?? ""
            return what + last
        }
    }

    /// Runs `argv` (in `folder`) and waits for its end, at most `timeout`; then its group is stopped and the
    /// outcome says so. Throws when it cannot start.
    public func run(
        _ name: String, _ argv: [String], in folder: String? = nil, environment: [String: String] = [:],
        timeout: Duration
    ) async throws -> Outcome {
        let serial = Self.counter.withLock { n -> UInt64 in
            n += 1
            return n
        }
        let log = outputFolder + "/" + name + "." + String(serial) + ".out"
        defer { unlink(log) }
        let process = supervisor.process(
            .oneShot(
                name: name + "-" + String(serial), kind: "command", argv: argv, environment: environment,
                workingDirectory: folder, logPath: log))
        let finished = try await process.runToEnd(timeout: timeout)
        let output = process.tail(lines: outputLines).joined(separator: "\n")
        guard let finished else {
            let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
            return Outcome(status: -SIGKILL, output: output + "\n(stopped after the time limit of \(seconds) s)")
        }
        return Outcome(status: finished.exitStatus, output: output)
    }
}
