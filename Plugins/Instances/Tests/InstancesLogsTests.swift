import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// `Instance.Logs` on a hostile log: bounded, linear, and off the bus thread (issue 13).
@Suite struct InstancesLogsTests {
    @Test func logsOfAHugeLineIsBoundedAndDoesNotStallTheBus() async throws {
        try await TestEnvironment.with { env in
            try await InstancesTest.start(env)
            let c = try env.connect()
            let id = try await InstancesTest.new(c, "{\"application_name\": \"quiet\"}")
            let log = env.stateHome + "/berth/instances/var/log/\(id).log"
            var bytes = Data(repeating: UInt8(ascii: "x"), count: 32 << 20)
            bytes.append(contentsOf: Array("\nthe end\n".utf8))
            try bytes.write(to: URL(fileURLWithPath: log))
            let (reply, report) = try await PingProbe.during(env) {
                try await c.call(
                    "org.berth.Berth1", InstancesTest.instancePath(id), "org.berth.Berth1.Instance", "Logs",
                    [.uint32(100_000)], timeout: .seconds(60))
            }
            print("Logs(100000) of a 32 MB line, Ping meanwhile: \(report)")
            #expect(report.load < .seconds(10), "\(report)")  // loose: a loaded debug run; the old read took minutes
            #expect(report.slowestPing < .seconds(5), "\(report)")  // the old read on the bus thread stalled it 6.5 s
            let lines = reply.first?.items?.compactMap(\.string) ?? []
            #expect(lines.count == 2 && lines.last == "the end")
            #expect(lines.first?.hasPrefix("[cut: the start of this line is more than") == true)
            #expect((lines.first?.utf8.count ?? 0) < 70 << 10)
        }
    }
}
