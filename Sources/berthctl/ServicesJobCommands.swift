import ArgumentParser
import BerthKit

/// start|stop|restart NAME: the job's result once it ends (JobRemoved), or the job path with `--no-block`.
struct ServiceJobOptions: ParsableArguments {
    @Argument(help: "The service's name.") var name: String
    @Flag(name: .customLong("no-block"), help: "Print the job and return without waiting for it.") var noBlock = false

    func run(_ member: String, _ bus: BusOptions) async throws {
        try await CLI.withConnection(bus) { connection in
            // Subscribe before calling: the job may end before the reply is read.
            let follower = try await JobFollower.subscribe(connection)
            let reply = try await ServicesBus.call(connection, member, [.string(name)])
            let id = reply[0].uint32 ?? 0
            let path = reply[1].string ?? ""
            if noBlock {
                print(bus.json ? JSON.object([("job_id", .int(Int64(id))), ("job", .string(path))]).text : path)
                return
            }
            let result = try await follower.follow(reply, what: "\(member.lowercased()) of service \"\(name)\"")
            let verb = member.lowercased()
            if bus.json {
                print(
                    JSON.object([("job_id", .int(Int64(id))), ("service", .string(name)), ("result", .string(result))])
                        .text)
            }
            guard result == "done" else {
                let message = await follower.errorMessage(reply)
                throw CLIError("\(verb) of service \"\(name)\" \(result)\(message.isEmpty ? "" : ": " + message)")
            }
            if !bus.json { print("\(verb) of service \"\(name)\": done") }
        }
    }
}

struct ServicesStart: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start", abstract: "Start a service; wait until it is ready.")
    @OptionGroup var bus: BusOptions
    @OptionGroup var job: ServiceJobOptions
    func run() async throws { try await job.run("Start", bus) }
}

struct ServicesStop: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stop", abstract: "Stop a service and its process group.")
    @OptionGroup var bus: BusOptions
    @OptionGroup var job: ServiceJobOptions
    func run() async throws { try await job.run("Stop", bus) }
}

struct ServicesRestart: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "restart", abstract: "Stop, then start a service.")
    @OptionGroup var bus: BusOptions
    @OptionGroup var job: ServiceJobOptions
    func run() async throws { try await job.run("Restart", bus) }
}
