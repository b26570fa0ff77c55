import ArgumentParser

/// berthctl doctor: filled in by the doctor work (see its issue).
struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "doctor", abstract: "Not yet available.", shouldDisplay: false)
    func run() async throws { throw CLIError("berthctl doctor is not available in this build") }
}
