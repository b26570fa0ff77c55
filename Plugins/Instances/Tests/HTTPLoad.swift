import BerthKit
import Foundation
import Synchronization

/// A steady stream of HTTP requests to 127.0.0.1:port from dedicated threads (blocking sockets stay off the
/// cooperative pool), bounded by a request count; counts answers by body and records every failure.
final class HTTPLoad: Sendable {
    struct Counts: Sendable {
        var total = 0
        var bodies: [String: Int] = [:]
        var failures: [String] = []
        var last = ""
    }
    let port: Int
    let limit: Int
    private let counts = Mutex(Counts())
    private let stopFlag = Mutex(false)
    private let running = Mutex(0)

    init(port: Int, limit: Int = 200_000) {
        self.port = port
        self.limit = limit
    }

    var snapshot: Counts { counts.withLock { $0 } }

    func start(threads: Int = 1) {
        for n in 0..<threads {
            running.withLock { $0 += 1 }
            try! OSThread.start(name: "http-load-\(n)") { [self] in
                while !stopFlag.withLock({ $0 }) {
                    let answer = InstancesTest.get(port: port)
                    let done = counts.withLock { c -> Bool in
                        c.total += 1
                        if let answer, answer.status == 200 {
                            c.bodies[answer.body, default: 0] += 1
                            c.last = answer.body
                        } else {
                            c.failures.append(
                                answer.map { "status \($0.status): \($0.body.prefix(80))" } ?? "no answer")
                        }
                        return c.total >= limit
                    }
                    if done { break }
                }
                running.withLock { $0 -= 1 }
            }
        }
    }

    /// Stops the threads and waits until they have finished their last request.
    func stop() async throws {
        stopFlag.withLock { $0 = true }
        let deadline = ContinuousClock.now + .seconds(10)
        while running.withLock({ $0 }) > 0 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}
