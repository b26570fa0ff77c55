import BerthKit

/// Follows one job of berthd: subscribed before the call that starts it, so no Log line and no JobRemoved is
/// missed; prints the Log lines and throws the job's error when it does not end `done`.
struct JobWaiter {
    let stream: AsyncStream<BusSignalMessage>
    let connection: BusConnection

    static func subscribe(_ connection: BusConnection) async throws -> JobWaiter {
        JobWaiter(stream: try await connection.signals(sender: Berth.name), connection: connection)
    }

    func wait(job path: String, printLogs: Bool) async throws {
        var result = ""
        for await signal in stream {
            if signal.path == path && signal.member == "Log" && signal.interface == "org.berth.Berth1.Job" {
                if printLogs { Output.line(signal.arguments.first?.string ?? "") }
            } else if signal.member == "JobRemoved" && signal.arguments.count >= 4
                && signal.arguments[1].string == path
            {
                result = signal.arguments[3].string ?? ""
                break
            }
        }
        guard result != "done" else { return }
        let message = (try? await connection.berthProperty(path, "org.berth.Berth1.Job", "ErrorMessage").string) ?? ""
        throw CLIError(message.isEmpty ? "job \(path) ended \(result)" : message)
    }
}
