import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// `New` + `Start` → running (pid known), measured through the bus with BerthKit's client. 30 rounds in the test
/// run; BERTH_BENCH=1 (Benchmarks/instances/run.sh) runs 300 and prints the figures.
@Suite(.serialized) struct InstancesLatencyTests {
    @Test func newPlusStartLatency() async throws {
        let bench = ProcessInfo.processInfo.environment["BERTH_BENCH"] == "1"
        let rounds = bench ? 300 : 30
        try await TestEnvironment.with { env in
            try await InstancesTest.start(env)
            let c = try env.connect()
            let root = env.stateHome + "/berth/instances"
            let stream = try await c.signals(sender: "org.berth.Berth1", member: "JobRemoved")
            var iterator = stream.makeAsyncIterator()
            let clock = ContinuousClock()
            var newTimes: [Double] = []
            var totals: [Double] = []
            var replyTimes: [Double] = []
            let ms = { (d: Duration) in Double(d.components.attoseconds) / 1e15 + Double(d.components.seconds) * 1000 }
            for _ in 0..<rounds {
                let t0 = clock.now
                let id = try await InstancesTest.new(c, "{\"application_name\": \"bench\"}")
                let t1 = clock.now
                // Putting the code in place is the user's part, not timed.
                try FileManager.default.createSymbolicLink(
                    atPath: "\(root)/\(id)/server", withDestinationPath: env.root + "/sleeper")
                if !FileManager.default.fileExists(atPath: env.root + "/sleeper") {
                    try FileSystem.writeAtomically(
                        env.root + "/sleeper", text: "#!/bin/sh\nexec sleep 1000\n", mode: 0o755)
                }
                let t2 = clock.now
                let reply = try await InstancesTest.call(c, "Start", [.string(id)])
                replyTimes.append(ms(t2.duration(to: clock.now)))
                while let s = await iterator.next() {
                    if s.arguments[1].string == reply[1].string {
                        #expect(s.arguments[3].string == "done")
                        break
                    }
                }
                let t3 = clock.now
                #expect((try await InstancesTest.property(c, id, "MainPID").uint32 ?? 0) > 0)
                let ms = { (d: Duration) in
                    Double(d.components.attoseconds) / 1e15 + Double(d.components.seconds) * 1000
                }
                newTimes.append(ms(t0.duration(to: t1)))
                totals.append(ms(t0.duration(to: t1)) + ms(t2.duration(to: t3)))
            }
            func p(_ values: [Double], _ q: Double) -> Double {
                values.sorted()[min(values.count - 1, Int(Double(values.count) * q))]
            }
            #expect(p(totals, 0.5) < 500, "New+Start p50 \(p(totals, 0.5)) ms")
            if bench {
                print(
                    String(
                        format: "BENCH new_p50_ms=%.2f start_reply_p50_ms=%.2f new_start_p50_ms=%.2f "
                            + "new_start_p90_ms=%.2f rounds=%d",
                        p(newTimes, 0.5), p(replyTimes, 0.5), p(totals, 0.5), p(totals, 0.9), rounds))
            }
        }
    }
}
