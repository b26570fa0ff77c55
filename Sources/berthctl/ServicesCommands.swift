import ArgumentParser

/// berthctl services: filled in by the services work (see its issue).
struct ServicesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "services", abstract: "Not yet available.", shouldDisplay: false)
    func run() async throws { throw CLIError("berthctl services is not available in this build") }
}
