import BerthKit

extension RecorderEngine {
    /// Starts a field deployment (acoupi's `deployment start`): a name, and coordinates in range, else
    /// `.invalidArgument`; a second active deployment is `.alreadyExists`; unless `force`, every health check
    /// must pass (`.healthCheckFailed` lists the failures). Stores the row and starts the schedule.
    func startDeployment(name: String, latitude: Double, longitude: Double, force: Bool = false) async throws
        -> Deployment
    {
        let name = try RecorderLimits.deploymentName(name)
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
        let seconds = try RecorderLimits.recordNow(seconds)
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

    /// Recordings whose files exist that started at or after `sinceUSec`, oldest first (`ListRecordings`).
    /// `limit` 0 means 1000; at most 100000. A listed file found gone is marked deleted ("missing") first.
    func listRecordings(sinceUSec: UInt64, limit: UInt32) async throws -> [RecordingRow] {
        try await queryRecordings(sinceUSec: sinceUSec, limit: limit, newestFirst: false, includeDeleted: false)
            .map(\.row)
    }

    /// One recording in a listing, with what processing made of it.
    struct ListedRecording: Sendable {
        var row: RecordingRow
        var detections: Int
        /// `processor: state (reason)` for each processor run.
        var processing: [String]
    }

    /// Recordings that started at or after `sinceUSec`, newest or oldest first, with or without deleted ones.
    /// Files of the listed rows are checked first: one removed by hand is marked deleted with reason "missing"
    /// (and `RecordingDeleted` says so), so no listing shows a file that is not there.
    func queryRecordings(sinceUSec: UInt64, limit: UInt32, newestFirst: Bool, includeDeleted: Bool) async throws
        -> [ListedRecording]
    {
        let runtime = try requireRuntime()
        let count = limit == 0 ? 1000 : min(Int(limit), 100_000)
        let since = Int64(clamping: sinceUSec)
        let store = runtime.store
        let fetch: @Sendable () throws -> [RecordingRow] = {
            try store.recordings(
                sinceUSec: since, limit: count, newestFirst: newestFirst, includeDeleted: includeDeleted)
        }
        var rows = try await OSThread.run(name: "berth-rec-db", fetch)
        if !(await reconcileMissing(runtime, only: rows)).isEmpty {
            rows = try await OSThread.run(name: "berth-rec-db", fetch)
        }
        let listed = rows
        return try await OSThread.run(name: "berth-rec-db") {
            let ids = listed.map(\.id)
            let detections = try store.detectionCounts(recordingIDs: ids)
            let tasks = try store.taskStates(recordingIDs: ids)
            return listed.map {
                ListedRecording(row: $0, detections: detections[$0.id] ?? 0, processing: tasks[$0.id] ?? [])
            }
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
