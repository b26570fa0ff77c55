import ArgumentParser

/// berthctl instances: filled in by the instances work (see its issue).
struct InstancesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "instances", abstract: "Not yet available.", shouldDisplay: false)
    func run() async throws { throw CLIError("berthctl instances is not available in this build") }
}
