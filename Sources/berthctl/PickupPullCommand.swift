import ArgumentParser
import BerthKit

/// `berthctl pickup pull NAME`: a git folder fetches now and deploys what the new commit changed (Pickup.Pull, a
/// job); prints the commit the folder is at, or the folder's error.
struct PickupPullCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull", abstract: "Fetch a git-fed folder now and deploy what the new commit changed.")
    @OptionGroup var bus: BusOptions
    @Argument(help: "The pickup folder's name (one with git: in the config).") var name: String

    func run() async throws {
        try await CLI.withConnection(bus) { connection in
            let follower = try await JobFollower.subscribe(connection)
            let reply = try await connection.pickup("Pull", [.string(name)])
            let result = try await follower.follow(reply, what: "pull of pickup folder \"\(name)\"")
            guard result == "done" else {
                let message = await follower.errorMessage(reply)
                throw CLIError("pull of pickup folder \"\(name)\" \(result)\(message.isEmpty ? "" : ": " + message)")
            }
            let rows =
                try await connection.berthProperty(PickupCommand.path, PickupCommand.interface, "GitFolders").items
                ?? []
            let row = rows.map { ($0.items ?? []).map { $0.string ?? "" } }.first { $0.first == name } ?? []
            let commit = row.count > 3 ? row[3] : ""
            if bus.json {
                print(
                    JSON.object([("name", .string(name)), ("commit", .string(commit)), ("result", .string(result))])
                        .text)
            } else {
                print("pickup folder \"\(name)\" is at commit \(commit)")
            }
        }
    }
}
