import ArgumentParser

/// berthctl pickup: filled in by the pickup work (see its issue).
struct PickupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pickup", abstract: "Not yet available.", shouldDisplay: false)
    func run() async throws { throw CLIError("berthctl pickup is not available in this build") }
}
