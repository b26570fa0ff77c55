import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// `Service.Logs` on a hostile log: bounded, linear, and off the bus thread (issue 13).
@Suite struct ServicesLogsTests {
    /// 32 MB without a line end: Logs(100000) answers at once with one cut and marked line of bounded size, and a
    /// Ping sent meanwhile is not held up (before: 6.5 s of the bus thread, quadratic in the log's size).
    @Test func logsOfAHugeLineIsBoundedAndDoesNotStallTheBus() async throws {
        try await TestEnvironment.with { env in
            let world = try await ServicesWorld.start(
                env, config: "services:\n  units:\n    chatty: { exec: [sleep, \"300\"] }\n")
            let log = env.stateHome + "/berth/services/logs/chatty.log"
            try FileManager.default.createDirectory(
                atPath: FileSystem.directoryName(log), withIntermediateDirectories: true)
            try Data(repeating: UInt8(ascii: "x"), count: 32 << 20).write(to: URL(fileURLWithPath: log))
            let (reply, report) = try await PingProbe.during(env) {
                try await world.client.call(
                    ServicesWorld.name, world.path("chatty"), ServicesWorld.service, "Logs", [.uint32(100_000)],
                    timeout: .seconds(60))
            }
            let lines = reply.first?.items?.compactMap(\.string) ?? []
            print("Logs(100000) of a 32 MB line, Ping meanwhile: \(report)")
            // Loose: a debug build with the whole suite running at once; the quadratic read took over a minute.
            #expect(report.load < .seconds(10), "\(report)")
            #expect(report.slowestPing < .seconds(5), "\(report)")  // the old read on the bus thread stalled it 6.5 s
            #expect(lines.count == 1)
            let line = try #require(lines.first)
            #expect(line.hasPrefix("[cut: the start of this line is more than"), "\(line.prefix(80))")
            #expect(line.utf8.count < 70 << 10 && line.hasSuffix(String(repeating: "x", count: 1000)))

            // Ordinary lines after it: the last N come back whole, the long line before them is not among them.
            let handle = try #require(FileHandle(forWritingAtPath: log))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data((1...5).map { "line \($0)\n" }.joined().utf8))
            try handle.close()
            let tail = try await world.client.call(
                ServicesWorld.name, world.path("chatty"), ServicesWorld.service, "Logs", [.uint32(3)])
            #expect(tail.first?.items?.compactMap(\.string) == ["line 3", "line 4", "line 5"])

            // A complete line longer than 64 KiB keeps its start and says how long it was.
            let writer = try #require(FileHandle(forWritingAtPath: log))
            try writer.seekToEnd()
            try writer.write(contentsOf: Data((String(repeating: "y", count: 100_000) + "\nlast\n").utf8))
            try writer.close()
            let long = try await world.client.call(
                ServicesWorld.name, world.path("chatty"), ServicesWorld.service, "Logs", [.uint32(2)])
            let two = long.first?.items?.compactMap(\.string) ?? []
            #expect(two.count == 2 && two.last == "last")
            #expect(two.first == String(repeating: "y", count: 65_536) + " [cut: line of 100000 bytes]")
        }
    }
}
