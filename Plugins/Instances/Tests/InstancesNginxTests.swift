import BerthKit
import BerthTestSupport
import Foundation
import Synchronization
import Testing

/// The front end for real: a private nginx (its own prefix, config, pid and logs in the test's folder, on a
/// loopback port) proxies to the current instance; a rolling deploy under a steady stream of requests must lose
/// none of them and switch the answers from v1 to v2. With BERTH_BENCH=1 it also prints the figures that
/// Benchmarks/instances/RESULTS.md reports.
@Suite(.serialized) struct InstancesNginxTests {
    @Test func rollingDeployThroughNginxLosesNoRequest() async throws {
        let bench = ProcessInfo.processInfo.environment["BERTH_BENCH"] == "1"
        try await TestEnvironment.with { env in
            let nginx = try await PrivateNginx.start(env, workerConnections: 1024)
            defer { nginx.stop() }
            let nginxPort = nginx.port
            let minReady = bench ? "2s" : "300ms"
            let text = InstancesTest.config(env, reload: nginx.reload)
                .replacingOccurrences(of: "min_ready: 300ms", with: "min_ready: \(minReady)")
            try await InstancesTest.start(env, config: text)
            let c = try env.connect()

            let v1 = try InstancesTest.app(env, version: "v1")
            let first = try await InstancesTest.runJob(c, "Deploy", [.string("web"), .string(v1), .vardict([])])
            #expect(first.result == "done", "\(first.error)\n\(first.logs.joined(separator: "\n"))")
            // nginx's reload is asynchronous: the worker of the placeholder config lingers until it has taken its
            // QUIT; start the measured load once v1 answers consistently.
            var streak = 0
            try await waitUntil("nginx serves only v1", timeout: .seconds(30)) {
                streak = InstancesTest.get(port: nginxPort)?.body == "v1" ? streak + 1 : 0
                return streak >= 100
            }

            let load = HTTPLoad(port: nginxPort)
            // The benchmark sends from 6 threads: the issue asks for at least 2,000 requests during one deploy.
            load.start(threads: bench ? 6 : 1)
            try await waitUntil("the load runs") { load.snapshot.total > 50 }
            let v2 = try InstancesTest.app(env, version: "v2")
            let before = load.snapshot.total
            let clock = ContinuousClock()
            let began = clock.now
            let steps = StepTimes(clock: clock, began: began)
            let second = try await InstancesTest.runJob(
                c, "Deploy", [.string("web"), .string(v2), .vardict([])], onLog: { steps.add($0) })
            let took = began.duration(to: clock.now)
            let during = load.snapshot.total - before
            #expect(second.result == "done", "\(second)")
            try await waitUntil("nginx serves v2 to the client") { load.snapshot.last == "v2" }
            let settle = load.snapshot.total
            try await waitUntil("more answers after the switch", timeout: .seconds(5)) {
                load.snapshot.total > settle + 100
            }
            try await load.stop()
            let counts = load.snapshot
            let errors = ((try? String(contentsOfFile: env.root + "/nginx/error.log", encoding: .utf8)) ?? "")
                .split(separator: "\n").filter { $0.contains("[error]") && !$0.contains("127.0.0.1:1/") }.suffix(3)
                .joined(separator: "\n")
            #expect(
                counts.failures.count == 0,
                "\(counts.failures.count) failed of \(counts.total): \(counts.failures.first ?? ""); nginx: \(errors)\n\(second.logs.joined(separator: "\n"))"
            )
            #expect(counts.bodies["v1", default: 0] > 0 && counts.bodies["v2", default: 0] > 0, "\(counts.bodies)")
            #expect(counts.last == "v2")
            #expect(during >= 100, "only \(during) requests during the deploy")
            if bench {
                let wait = Double(minReady == "2s" ? 2.0 : 0.3) + 0.3
                let seconds = Double(took.components.seconds) + Double(took.components.attoseconds) / 1e18
                print(
                    "BENCH deploy_total_s=\(seconds) configured_wait_s=\(wait) overhead_ms=\(Int((seconds - wait) * 1000)) "
                        + "requests_during_deploy=\(during) requests_total=\(counts.total) failed=\(counts.failures.count)"
                )
                for line in steps.lines { print("BENCH   \(line)") }
            }
        }
    }
}

/// When each Log line of a job arrived, in ms since the job began (for the benchmark's breakdown).
final class StepTimes: Sendable {
    let clock: ContinuousClock
    let began: ContinuousClock.Instant
    private let entries = Mutex<[String]>([])
    init(clock: ContinuousClock, began: ContinuousClock.Instant) {
        self.clock = clock
        self.began = began
    }
    func add(_ line: String) {
        let d = began.duration(to: clock.now)
        let ms = Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
        entries.withLock { $0.append(String(format: "%7.1f ms  %@", ms, String(line.prefix(90)))) }
    }
    var lines: [String] { entries.withLock { $0 } }
}
