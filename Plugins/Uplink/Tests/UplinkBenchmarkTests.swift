import BerthKit
import BerthTestSupport
import Foundation
import Synchronization
import Testing

/// The figures of issue 16, measured only with BERTH_BENCH=1 (Benchmarks/uplink/run.sh runs it against a release
/// berthd through BERTH_BUILD_DIR). Prints BENCH lines.
@Suite(.serialized) struct UplinkBenchmarkTests {
    static let enabled = ProcessInfo.processInfo.environment["BERTH_BENCH"] == "1"

    static func cpuUSec(_ pid: Int32) -> UInt64 {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        let ticks = (UInt64(fields[11]) ?? 0) + (UInt64(fields[12]) ?? 0)
        return ticks * 1_000_000 / UInt64(sysconf(Int32(_SC_CLK_TCK)))
    }

    static func percentile(_ values: [Double], _ p: Double) -> Double {
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.down)))]
    }

    @Test(.enabled(if: enabled)) func figures() async throws {
        let samples = Int(ProcessInfo.processInfo.environment["SAMPLES"] ?? "") ?? 200
        let backlog = Int(ProcessInfo.processInfo.environment["BACKLOG"] ?? "") ?? 10_000
        try await TestEnvironment.with { env in
            let broker = try Broker(in: env.root)
            try await broker.start()
            let subscriber = try await broker.subscribe(timestamps: true)
            let world = try UplinkWorld(env)
            try broker.writeCredentials(world.credentialsFile)
            try await world.start(
                config: world.mqttConfig(broker, top: ["max_pending: 1000000"]).replacingOccurrences(
                    of: "retry_max: 400ms", with: "retry_max: 1s"))
            guard let pid = world.daemon?.pid else { throw TestFailure("no berthd") }

            // When each Deployed signal reached a bus client (the test), by deployment id.
            let seen = Mutex<[String: UInt64]>([:])
            let signals = try await env.connect().signals(
                path: "/org/berth/Berth1/pickup", interface: "org.berth.Berth1.Pickup", member: "Deployed")
            let listener = Task {
                for await signal in signals {
                    let now = SystemClock.wallUSec()
                    if let id = signal.arguments.first?.string { seen.withLock { $0[id] = now } }
                }
            }
            defer { listener.cancel() }

            // 1. Latency: signal on the bus → message at the subscriber of the local broker.
            var latencies: [Double] = []
            for i in 0..<samples {
                let id = try await world.deploy("latency-\(i).txt")
                try await waitUntil("message \(i)") {
                    subscriber.messages.contains { ($0.json?["fields"] as? [String: Any])?["id"] as? String == id }
                }
                let arrival = subscriber.messages.first {
                    ($0.json?["fields"] as? [String: Any])?["id"] as? String == id
                }!.arrivalUSec
                guard let emitted = seen.withLock({ $0[id] }) else { continue }
                latencies.append(Double(Int64(arrival) - Int64(emitted)) / 1000)
                try await Task.sleep(for: .milliseconds(5))
            }
            // The floor: mosquitto_pub → the same subscriber.
            var floor: [Double] = []
            for i in 0..<samples {
                let start = SystemClock.wallUSec()
                let payload = "floor-\(i)"
                let pub = try ChildProcess.spawn(
                    [
                        "mosquitto_pub", "-h", "127.0.0.1", "-p", String(broker.port), "-u", broker.user, "-P",
                        broker.password, "-q", "1", "-t", "berth/bench/floor", "-m", payload,
                    ], stdout: "/dev/null", stderr: "/dev/null")
                _ = try await pub.wait()
                try await waitUntil("floor \(i)") { subscriber.messages.contains { $0.payload == payload } }
                let arrival = subscriber.messages.first { $0.payload == payload }!.arrivalUSec
                floor.append(Double(Int64(arrival) - Int64(start)) / 1000)
            }
            print(
                String(
                    format:
                        "BENCH uplink latency bus→subscriber p50 %.2f ms p99 %.2f ms (n=%d); floor mosquitto_pub→subscriber p50 %.2f ms p99 %.2f ms",
                    Self.percentile(latencies, 0.5), Self.percentile(latencies, 0.99), latencies.count,
                    Self.percentile(floor, 0.5),
                    Self.percentile(floor, 0.99)))

            // 2. Outage: BACKLOG events queued while the broker is down, then delivered in order.
            try await waitUntil("nothing pending") { try await world.pending() == 0 }
            try await Task.sleep(for: .seconds(1))
            let idleRSS = procStatusKiB(pid, "VmRSS") ?? 0
            try await broker.stop()
            let queueStart = ContinuousClock.now
            var names: [String] = []
            for i in 0..<backlog {
                let name = "outage-\(i).txt"
                names.append(name)
                try await world.deploy(name)
            }
            try await waitUntil("\(backlog) pending", timeout: .seconds(120)) {
                try await world.pending() == UInt64(backlog)
            }
            let queued = ContinuousClock.now - queueStart
            let pendingRSS = procStatusKiB(pid, "VmRSS") ?? 0
            let cpuBefore = Self.cpuUSec(pid)
            let before = subscriber.messages.count
            let beforeLines = subscriber.lineCount
            try await broker.start()
            let back = ContinuousClock.now
            try await waitUntil("\(backlog) delivered", timeout: .seconds(120)) {
                subscriber.lineCount - beforeLines >= backlog
            }
            let delivered = ContinuousClock.now - back
            let cpuAfter = Self.cpuUSec(pid)
            let received = Array(subscriber.messages.dropFirst(before)).compactMap(\.json).filter { $0["id"] != nil }
            let order = received.deduplicated.fieldValues("name")
            let inOrder = order == names
            try await waitUntil("nothing pending") { try await world.pending() == 0 }
            print(
                "BENCH uplink outage: \(backlog) messages queued in \(queued) (pickup deploys); delivered after the broker's "
                    + "return in \(delivered), in order: \(inOrder), duplicates: \(received.count - order.count)")
            print(
                "BENCH uplink RSS idle \(idleRSS) KiB, with \(backlog) pending \(pendingRSS) KiB (+\(pendingRSS - idleRSS) KiB)"
            )
            print(
                String(
                    format: "BENCH uplink CPU per 1,000 messages delivered (berthd, utime+stime): %.1f ms",
                    Double(cpuAfter - cpuBefore) / 1000 / Double(backlog) * 1000))
            #expect(inOrder)
        }
    }
}
