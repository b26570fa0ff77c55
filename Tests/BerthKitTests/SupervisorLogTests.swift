import Glibc
import Testing

@testable import BerthKit

/// The unit's log: the child's output through the supervisor's pipe, rotation by size, reopen, tail.
@Suite(.serialized) struct SupervisorLogTests {
    typealias Support = SupervisorTestSupport

    static func size(_ path: String) -> Int? {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : nil
    }

    @Test(.timeLimit(.minutes(1))) func rotationKeepsNFilesAndTailReadsTheCurrentOne() async throws {
        let (supervisor, dir) = try Support.makeSupervisor()
        defer { Support.removeTree(dir) }
        let log = dir + "/chatty.log"
        // 300 lines of 40 bytes on stdout and stderr alternately: 12 000 bytes through a 1 000-byte limit.
        let script = "i=0; while [ $i -lt 300 ]; do printf 'line %04d xxxxxxxxxxxxxxxxxxxxxxxxxxxxx\\n' $i >&$((1 + i % 2)); i=$((i+1)); done"
        let unit = supervisor.process(
            ProcessSpec(name: "chatty", argv: ["sh", "-c", script], logPath: log, logMaxBytes: 1000, logKeep: 3, restart: .no))
        try await unit.start()
        #expect(await Support.eventually { unit.snapshot.state == .inactive })
        for index in 1...3 {
            let size = try #require(Self.size("\(log).\(index)"), "\(log).\(index) is missing")
            #expect(size <= 1000 && size >= 960)
        }
        #expect(Self.size("\(log).4") == nil)
        #expect((Self.size(log) ?? 0) <= 1000)
        #expect(unit.tail(lines: 2) == ["line 0298 xxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "line 0299 xxxxxxxxxxxxxxxxxxxxxxxxxxxxx"])
        #expect(unit.tail(lines: 1000).count == (Self.size(log) ?? 0) / 40)
        // Every byte is in exactly one file: the newest rotated file continues where the current one starts.
        let newestRotated = try #require(readSmallFile("\(log).1"))
        let current = try #require(readSmallFile(log))
        let lastRotated = Int(newestRotated.split(separator: "\n").last!.dropFirst(5).prefix(4))!
        let firstCurrent = Int(current.split(separator: "\n").first!.dropFirst(5).prefix(4))!
        #expect(firstCurrent == lastRotated + 1)
    }

    @Test(.timeLimit(.minutes(1))) func reopenLogsFollowsAnExternalRotation() async throws {
        let (supervisor, dir) = try Support.makeSupervisor()
        defer { Support.removeTree(dir) }
        let log = dir + "/app.log"
        let writer = supervisor.process(
            ProcessSpec(
                name: "writer", argv: ["sh", "-c", "echo first; while [ ! -e \(dir)/go ]; do sleep 0.01; done; echo second; exec sleep 300"],
                logPath: log))
        try await writer.start()
        #expect(await Support.eventually { writer.tail(lines: 1) == ["first"] })
        #expect(rename(log, log + ".old") == 0)
        try writer.reopenLogs()
        close(open(dir + "/go", O_WRONLY | O_CREAT, 0o644))
        #expect(await Support.eventually { readSmallFile(log) == "second\n" })
        #expect(readSmallFile(log + ".old") == "first\n")
        await writer.stop()
    }
}
