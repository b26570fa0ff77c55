import ArgumentParser
import BerthKit
import Glibc

/// berthctl instances logs ID [-f]: the last lines through `Logs`, then (with -f) the log file followed as it
/// grows, rotations included.
struct InstancesLogs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logs", abstract: "Show an instance's log.")
    @OptionGroup var bus: BusOptions
    @OptionGroup var target: InstanceIDArgument
    @Option(name: .shortAndLong, help: "Lines to show.") var lines: UInt32 = 50
    @Flag(name: .shortAndLong, help: "Follow the log as it grows.") var follow = false

    func run() async throws {
        try await CLI.withConnection(bus) { connection in
            let reply = try await connection.berth(Instances.path, Instances.interface, "List")
            guard let row = (reply.first?.items ?? []).first(where: { $0.items?.first?.string == target.id }),
                let path = row.items?[3].string
            else { throw CLIError("instance \"\(target.id)\" does not exist") }
            let shown = try await connection.berth(path, Instances.instanceInterface, "Logs", [.uint32(lines)])
            for line in shown.first?.items ?? [] { Output.line(line.string ?? "") }
            guard follow else { return }
            let logPath = try await connection.berthProperty(path, Instances.instanceInterface, "LogPath").string ?? ""
            try await Self.follow(logPath)
        }
    }

    static func follow(_ path: String) async throws {
        var offset = fileSize(path)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let size = fileSize(path)
            if size < offset { offset = 0 }  // rotated or truncated
            if size > offset {
                let fd = open(path, O_RDONLY | O_CLOEXEC)
                if fd >= 0 {
                    lseek(fd, off_t(offset), SEEK_SET)
                    while true {
                        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                        if n <= 0 { break }
                        offset += n
                        _ = buffer.withUnsafeBytes { write(1, $0.baseAddress, n) }
                    }
                    close(fd)
                }
            }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    static func fileSize(_ path: String) -> Int {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : 0
    }
}
