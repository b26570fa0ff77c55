import BerthKit
import Glibc
import Synchronization

/// Makes every command's unit name and output file unique, so concurrent deploys never share them.
private let commandCounter = Mutex<UInt64>(0)

/// Runs short commands (`tar`, the front end's reload command, `exec:` health checks) as one-shot units of the
/// plugin's supervisor: own process group, output to a log file, SIGTERM then SIGKILL when the time limit passes.
struct CommandRunner: Sendable {
    let supervisor: Supervisor
    /// Output of each command goes to `<folder>/<name>.<n>.out` while it runs (removed after).
    let outputFolder: String

    struct Outcome: Sendable {
        var status: Int32
        var output: String
        var succeeded: Bool { status == 0 }
        /// "exited with status 2: <last output line>"
        var reason: String {
            let what = status < 0 ? "was killed by signal \(-status)" : "exited with status \(status)"
            let last = output.split(separator: "\n").last.map { ": " + $0 } ?? ""
            return what + last
        }
    }

    /// Runs `argv` in `folder` and waits for its end (at most `timeout`, then its group is stopped and the
    /// outcome says so). Throws when it cannot start.
    func run(
        _ name: String, _ argv: [String], in folder: String? = nil, environment: [String: String] = [:],
        timeout: Duration
    ) async throws -> Outcome {
        let serial = commandCounter.withLock { n -> UInt64 in
            n += 1
            return n
        }
        let log = outputFolder + "/" + name + "." + String(serial) + ".out"
        defer { unlink(log) }
        let process = supervisor.process(
            .oneShot(
                name: name, kind: "command", argv: argv, environment: environment, workingDirectory: folder,
                logPath: log))
        let finished = try await process.runToEnd(timeout: timeout)
        let output = process.tail(lines: 20).joined(separator: "\n")
        guard let finished else {
            let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
            return Outcome(status: -SIGKILL, output: output + "\n(stopped after the time limit of \(seconds) s)")
        }
        return Outcome(status: finished.exitStatus, output: output)
    }
}
