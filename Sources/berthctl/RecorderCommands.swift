import ArgumentParser

/// berthctl recorder: filled in by the recorder work (see its issue).
struct RecorderCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "recorder", abstract: "Not yet available.", shouldDisplay: false)
    func run() async throws { throw CLIError("berthctl recorder is not available in this build") }
}
