import BerthKit

/// Waits for an instance to become healthy and stay healthy: the check must pass within `timeout` and then keep
/// passing, probed every `interval`, for `minReady`. The instance must keep running throughout.
struct HealthChecker: Sendable {
    let spec: HealthSpec
    let port: Int
    let folder: String
    let runner: CommandRunner
    /// Why the instance is not running (nil while it runs).
    let notRunning: @Sendable () -> String?

    /// Returns when healthy; throws `HealthCheckFailed` with the reason otherwise.
    func waitHealthy(log: @Sendable (String) -> Void) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + spec.timeout
        var lastReason = "no probe ran"
        var passedSince: ContinuousClock.Instant?
        while true {
            try Task.checkCancellation()
            if let reason = notRunning() { throw failure("the instance stopped: \(reason)") }
            let probeLimit = min(max(spec.interval * 10, .milliseconds(500)), spec.timeout)
            let reason = await probe(timeout: probeLimit)
            let now = clock.now
            if let reason {
                if let since = passedSince {
                    throw failure("the check passed, then failed after \(since.duration(to: now)): \(reason)")
                }
                lastReason = reason
                if now >= deadline { throw failure("not healthy within \(spec.timeout): \(lastReason)") }
            } else if let since = passedSince {
                if since.duration(to: now) >= spec.minReady { break }
            } else {
                passedSince = now
                log("health check \(spec.checkText) passed; it must keep passing for \(spec.minReady)")
                if spec.minReady <= .zero { break }
            }
            var pause = spec.interval
            if let since = passedSince { pause = min(pause, spec.minReady - since.duration(to: now)) }
            if pause > .zero { try await Task.sleep(for: pause) }
        }
        if let reason = notRunning() { throw failure("the instance stopped: \(reason)") }
    }

    private func probe(timeout: Duration) async -> String? {
        switch spec.check {
        case .none:
            return nil
        case .tcp:
            guard port > 0 else { return "tcp check needs a listen port" }
            return await HealthProbe.tcp(port: port, timeout: timeout)
        case .http(let path):
            guard port > 0 else { return "http check needs a listen port" }
            return await HealthProbe.http(port: port, path: path, timeout: timeout)
        case .exec(let command):
            do {
                let outcome = try await runner.run(
                    "health-" + FileSystem.baseName(folder), ["/bin/sh", "-c", command], in: folder,
                    environment: ["PORT": String(port)], timeout: timeout)
                return outcome.succeeded ? nil : "\"\(command)\" \(outcome.reason)"
            } catch {
                return "\"\(command)\" did not start: \(BerthError.wrapping(error).message)"
            }
        }
    }

    private func failure(_ reason: String) -> BerthError {
        BerthError(
            .healthCheckFailed, "health check \(spec.checkText) of \(FileSystem.baseName(folder)) failed: \(reason)")
    }
}
