import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// What clients watch: PropertiesChanged, Logs, and berthctl's list/logs/--no-block output.
@Suite struct ServicesObserveTests {
    @Test func propertiesChangedLogsAndBerthctlOutput() async throws {
        try await TestEnvironment.with { env in
            let world = try await ServicesWorld.start(
                env,
                config: """
                    services:
                      units:
                        talker: { exec: [sh, -c, "echo first; echo second; exec sleep 300"], endpoint: "tcp://127.0.0.1:1" }
                    """)
            let changes = try await world.client.signals(path: world.path("talker"), member: "PropertiesChanged")
            let start = try await env.berthctl(["services", "start", "--no-block", "talker"])
            #expect(start.status == 0 && start.stdout.hasPrefix("/org/berth/Berth1/job/"), "\(start)")
            var sawActive = false
            var sawPID = false
            for await signal in changes {
                let changed = signal.arguments[1].stringKeyed ?? [:]
                if changed["State"] == .variant(.string("active")) { sawActive = true }
                if case .variant(.uint32(let pid))? = changed["MainPID"], pid > 0 { sawPID = true }
                if sawActive && sawPID { break }
            }
            try await waitUntil("both lines are logged") {
                let reply = try await world.client.call(
                    "org.berth.Berth1", world.path("talker"), ServicesWorld.service, "Logs", [.uint32(2)])
                return reply.first?.items?.compactMap(\.string) == ["first", "second"]
            }
            let logs = try await env.berthctl(["services", "logs", "talker", "-n", "1"])
            #expect(logs.stdout == "second\n", "\(logs)")
            let bad = try await env.busctl([
                "call", "org.berth.Berth1", world.path("talker"), ServicesWorld.service, "Logs", "u", "0",
            ])
            #expect(bad.status != 0 && bad.stderr.contains("cannot show 0 log lines"), "\(bad)")
            let json = try await env.berthctl(["--json", "services", "list"])
            let rows = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]]
            let row = try #require(rows?.first, "\(json)")
            #expect(row["name"] as? String == "talker" && row["state"] as? String == "active")
            #expect(row["endpoint"] as? String == "tcp://127.0.0.1:1")
            #expect((row["pid"] as? Int ?? 0) == Int(try await world.mainPID("talker")))
            let table = try await env.berthctl(["services", "list"])
            #expect(table.stdout.hasPrefix("NAME    STATE   PID"), "\(table)")
        }
    }
}
