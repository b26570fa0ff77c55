import BerthKit
import Foundation
import Synchronization

/// A regression check for "the bus thread never waits": `Manager.Ping` from a connection of its own, one call
/// after another, for as long as a load runs. The slowest answer is what a client saw while the load ran.
public enum PingProbe {
    public struct Report: Sendable, CustomStringConvertible {
        /// How long the load took.
        public var load: Duration
        /// The slowest Ping that overlapped the load.
        public var slowestPing: Duration
        public var pings: Int
        public var description: String { "load \(load), \(pings) pings, slowest \(slowestPing)" }
    }

    /// Runs `load` while pinging berthd on `env`'s bus; returns the load's result and what the pings saw. The first
    /// Ping answers before the load starts (so a slow start of the prober is not counted).
    public static func during<T: Sendable>(
        _ env: TestEnvironment, _ load: @Sendable () async throws -> T
    ) async throws -> (T, Report) {
        let client = try env.connect()
        defer { client.close() }
        let ping: @Sendable () async throws -> Duration = {
            let clock = ContinuousClock()
            let start = clock.now
            _ = try await client.call(
                "org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager", "Ping", timeout: .seconds(30))
            return clock.now - start
        }
        _ = try await ping()
        let done = Atomic<Bool>(false)
        let prober = Task { () throws -> (Duration, Int) in
            var slowest = Duration.zero
            var count = 0
            repeat {
                slowest = max(slowest, try await ping())
                count += 1
            } while !done.load(ordering: .acquiring)
            return (slowest, count)
        }
        let clock = ContinuousClock()
        let start = clock.now
        let result: T
        do {
            result = try await load()
        } catch {
            done.store(true, ordering: .releasing)
            _ = try? await prober.value
            throw error
        }
        let took = clock.now - start
        done.store(true, ordering: .releasing)
        let (slowest, count) = try await prober.value
        return (result, Report(load: took, slowestPing: slowest, pings: count))
    }
}
