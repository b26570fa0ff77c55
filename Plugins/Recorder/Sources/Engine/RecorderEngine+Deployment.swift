import BerthKit

extension RecorderEngine {
    /// Starts a field deployment (acoupi's `deployment start`): a name, and coordinates in range, else
    /// `.invalidArgument`; a second active deployment is `.alreadyExists`; unless `force`, every health check
    /// must pass (`.healthCheckFailed` lists the failures). Stores the row and starts the schedule.
    func startDeployment(name: String, latitude: Double, longitude: Double, force: Bool = false) async throws
        -> Deployment
    {
        let name = name.trimmingWhitespace
        guard !name.isEmpty else { throw BerthError.invalidArgument("a deployment needs a name") }
        guard name.utf8.count <= 256 else {
            throw BerthError.invalidArgument("deployment name \"\(name.prefix(40))...\" is longer than 256 bytes")
        }
        guard latitude.isFinite, (-90...90).contains(latitude) else {
            throw BerthError.invalidArgument("latitude \(latitude) is not between -90 and 90")
        }
        guard longitude.isFinite, (-180...180).contains(longitude) else {
            throw BerthError.invalidArgument("longitude \(longitude) is not between -180 and 180")
        }
        let runtime = try requireRuntime()
        try claimTransition()
        defer { mutable.withLock { $0.transitioning = false } }
        if let active = activeDeployment {
            throw BerthError.alreadyExists(
                "deployment \"\(active.name)\" (\(active.id)) is already active; stop it first")
        }
        if !force {
            let failures = await check().filter { !$0.passed }
            if !failures.isEmpty {
                throw BerthError(
                    .healthCheckFailed,
                    "health checks failed: " + failures.map { "\($0.name): \($0.message)" }.joined(separator: "; "))
            }
        }
        let deployment = Deployment(
            id: RecordingID.make(), name: name, latitude: latitude, longitude: longitude, startedUSec: clock())
        try await OSThread.run(name: "berth-rec-db") { try runtime.store.insertDeployment(deployment) }
        mutable.withLock { $0.deployment = deployment }
        logger.notice(
            "recorder: deployment \"\(name)\" (\(deployment.id)) started at \(latitude), \(longitude)")
        events.deploymentChanged(deployment)
        startScheduler(runtime, deployment: deployment)
        return deployment
    }

    /// Ends the active deployment (acoupi's `deployment stop`): the recording in progress is finished cleanly,
    /// then `ended_on` is stored. `.notFound` when none is active.
    @discardableResult
    func stopDeployment() async throws -> Deployment {
        let runtime = try requireRuntime()
        try claimTransition()
        defer { mutable.withLock { $0.transitioning = false } }
        guard activeDeployment != nil else { throw BerthError.notFound("no deployment is active") }
        let scheduler = mutable.withLock { state in
            defer { state.scheduler = nil }
            return state.scheduler
        }
        scheduler?.cancel()
        await scheduler?.value
        let ended = try await OSThread.run(name: "berth-rec-db") { [clock] in
            try runtime.store.endActiveDeployment(atUSec: clock())
        }
        mutable.withLock { state in
            state.deployment = nil
            state.nextRecordingUSec = nil
            state.policyStop = nil
        }
        setState(.idle)
        events.deploymentChanged(nil)
        guard let ended else { throw BerthError.notFound("no deployment is active") }
        logger.notice("recorder: deployment \"\(ended.name)\" (\(ended.id)) stopped")
        return ended
    }

    private func claimTransition() throws {
        let claimed = mutable.withLock { state in
            if state.transitioning { return false }
            state.transitioning = true
            return true
        }
        guard claimed else { throw BerthError.busy("a deployment is being started or stopped; try again") }
    }

    /// Records `seconds` now, with or without a deployment, and returns the saved recording. `.busy` while
    /// another recording holds the device; `.storageFull` when the low-disk policy refuses.
    func recordNow(seconds: Double) async throws -> RecordingRow {
        guard seconds.isFinite, seconds > 0, seconds <= 86400 else {
            throw BerthError.invalidArgument("record-now length \(seconds) s must be above 0 and at most 86400")
        }
        let runtime = try requireRuntime()
        let format = runtime.resolved.format
        let frames = max(1, format.frames(usec: Int64(seconds * 1e6)))
        let expected = UInt64(frames) * UInt64(format.fileFrameBytes)
        let admission = try await OSThread.run(name: "berth-rec-disk") {
            runtime.storage.admit(expectedBytes: expected)
        }
        switch admission {
        case .write: break
        case .skip(let reason), .stop(let reason): throw BerthError(.storageFull, reason)
        }
        let plan = SessionPlan(
            totalFrames: frames, segmentFrames: frames, deploymentID: activeDeployment?.id, reason: "record-now")
        let (before, reason) = mutable.withLock { ($0.state, $0.reason) }
        guard let result = await runSession(plan, runtime) else {
            throw BerthError.busy("a recording is in progress on ALSA PCM \"\(config.device)\"; try again after it")
        }
        // Back to what the engine was doing before.
        setState(before != .recording ? before : activeDeployment == nil ? .idle : .scheduled, reason: reason)
        if let error = result.error { throw error }
        if let reason = result.stopReason { throw BerthError(.storageFull, reason) }
        guard let row = result.lastSaved else {
            throw BerthError(.cancelled, "the recording was stopped before any audio was saved")
        }
        return row
    }

    /// Recordings that started at or after `sinceUSec`, oldest first. `limit` 0 means 1000; at most 100000.
    func listRecordings(sinceUSec: UInt64, limit: UInt32) async throws -> [RecordingRow] {
        let runtime = try requireRuntime()
        let count = limit == 0 ? 1000 : min(Int(limit), 100_000)
        let since = Int64(clamping: sinceUSec)
        return try await OSThread.run(name: "berth-rec-db") {
            try runtime.store.recordings(sinceUSec: since, limit: count)
        }
    }
}

extension String {
    var trimmingWhitespace: String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })!
        return String(scalars[first...last])
    }
}
