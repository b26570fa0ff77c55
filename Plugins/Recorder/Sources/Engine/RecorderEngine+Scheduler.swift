import BerthKit

extension RecorderEngine {
    /// How a planned recording went.
    enum Outcome: Sendable, Equatable {
        case recorded
        case skipped(String)
        case stopped(String)
        case failed(String, device: Bool)
    }

    func startScheduler(_ runtime: Runtime, deployment: Deployment) {
        setState(.scheduled)
        mutable.withLock { state in
            state.policyStop = nil
            state.scheduler = Task { await self.scheduleLoop(runtime, deploymentID: deployment.id) }
        }
    }

    /// Sleeps until each planned recording and runs it, until cancelled. A failure puts the engine in `error`
    /// and retries with exponential backoff; only the `stop` low-disk policy ends the loop by itself.
    func scheduleLoop(_ runtime: Runtime, deploymentID: String) async {
        let schedule = runtime.resolved.schedule
        let lateTolerance: Int64 = 1_000_000
        var planned: Schedule.Planned?
        var skipping = false
        while !Task.isCancelled {
            let now = clock()
            if planned == nil || now > planned!.start + lateTolerance {
                if let missed = planned {
                    noteError("missed the recording planned at \(MetadataStore.text(missed.start)) UTC")
                }
                planned = schedule.nextRecording(afterUSec: now)
                mutable.withLock { $0.nextRecordingUSec = planned?.start }
            }
            guard let next = planned else {
                await sleep(usec: 60_000_000)
                continue
            }
            if next.start > now {
                await sleep(usec: min(next.start - now, 30_000_000))
                continue
            }
            planned = nil
            let outcome = await record(next, runtime, deploymentID: deploymentID)
            if case .skipped(let reason) = outcome, reason != "device busy" {
                // Said once when skipping starts, not every interval.
                if !skipping { noteError("skipping recordings: \(reason)") }
                skipping = true
            } else {
                skipping = false
            }
            switch outcome {
            case .recorded, .skipped:
                if state == .recording || state == .error { setState(.scheduled) }
            case .stopped(let reason):
                mutable.withLock { $0.policyStop = reason }
                setState(.error, reason: "recording stopped by low_disk_policy stop: \(reason)")
                return
            case .failed(let reason, let device):
                await retry(runtime, reason: reason, device: device)
            }
        }
    }

    /// One planned recording (or continuous session): low-disk check, then a session.
    func record(_ planned: Schedule.Planned, _ runtime: Runtime, deploymentID: String?) async -> Outcome {
        let resolved = runtime.resolved
        let segment = resolved.segmentFrames
        let total = resolved.schedule.continuous ? planned.duration.map { resolved.format.frames(usec: $0) } : segment
        if let total, total <= 0 { return .skipped("empty recording") }
        if !resolved.schedule.continuous {
            let expected = UInt64(segment) * UInt64(resolved.format.fileFrameBytes)
            let admission =
                (try? await OSThread.run(name: "berth-rec-disk") {
                    runtime.storage.admit(expectedBytes: expected)
                }) ?? .write
            switch admission {
            case .write: break
            case .skip(let reason): return .skipped(reason)
            case .stop(let reason): return .stopped(reason)
            }
        }
        let plan = SessionPlan(
            totalFrames: total, segmentFrames: segment, deploymentID: deploymentID,
            reason: resolved.schedule.continuous ? "continuous" : "schedule")
        guard let result = await runSession(plan, runtime) else {
            logger.notice(
                "recorder: skipped the recording at \(MetadataStore.text(planned.start)) UTC: the device is busy")
            return .skipped("device busy")
        }
        if let reason = result.stopReason { return .stopped(reason) }
        if let error = result.error {
            return .failed(error.message, device: !result.opened || error.code == .deviceUnavailable)
        }
        return .recorded
    }

    /// Runs one session with the engine's hooks; nil when another session holds the device.
    func runSession(_ plan: SessionPlan, _ runtime: Runtime) async -> SessionResult? {
        var hooks = SegmentWriter.Hooks()
        hooks.admit = { runtime.storage.admit(expectedBytes: $0) }
        hooks.started = { [events] _, path, start in events.recordingStarted(path, UInt64(max(0, start))) }
        hooks.saved = { [weak self] row in self?.saved(row) }
        let session = RecordingSession(
            settings: runtime.resolved.capture, plan: plan, pace: config.paceRealtime, layout: runtime.resolved.layout,
            store: runtime.store, hooks: hooks, logger: logger)
        let claimed = mutable.withLock { state in
            guard state.session == nil, state.probes == 0 else { return false }
            state.session = session
            return true
        }
        guard claimed else { return nil }
        setState(.recording)
        let result = await session.run()
        mutable.withLock { state in
            state.session = nil
            state.finishedOverruns += result.overruns
            if result.opened { state.captureProblem = nil }
            if let error = result.error {
                if !result.opened || error.code == .deviceUnavailable {
                    state.captureProblem = error.message
                } else {
                    state.writerProblem = error.message
                }
            } else if result.savedCount > 0 {
                state.writerProblem = nil
            }
        }
        if let error = result.error { noteError(error.message) }
        if result.skippedSegments > 0, let shortage = runtime.storage.shortage {
            noteError("skipped \(result.skippedSegments) recording(s): \(shortage)")
        }
        return result
    }

    /// A file was saved: counters, last recording, the event.
    private func saved(_ row: RecordingRow) {
        mutable.withLock { state in
            state.lastRecording = row
            state.recordingsCount += 1
            state.recordingsSinceBeat += 1
        }
        wakeProcessing()
        events.recordingSaved(row.id, row.path, UInt64(max(0, row.startUSec)), row.durationSeconds)
    }

    /// After a failure: `error` with the reason, then retry with exponential backoff until the device opens (or
    /// the storage takes a file again), or the task is cancelled.
    func retry(_ runtime: Runtime, reason: String, device: Bool) async {
        var delay = config.retryInitialSeconds
        var reason = reason
        while !Task.isCancelled {
            setState(.error, reason: reason)
            logger.warning("recorder: \(reason); retrying in \(delay) s")
            await sleep(usec: Int64(delay * 1e6))
            if Task.isCancelled { return }
            do {
                if device {
                    try await probeDevice(runtime.resolved.capture)
                    mutable.withLock { $0.captureProblem = nil }
                } else {
                    try await OSThread.run(name: "berth-rec-probe") {
                        try Self.probeStorage(runtime.resolved.layout)
                    }
                    mutable.withLock { $0.writerProblem = nil }
                }
                logger.notice("recorder: \(device ? "device" : "storage") is back; resuming the schedule")
                setState(.scheduled)
                return
            } catch {
                reason = BerthError.wrapping(error).message
                noteError(reason)
                delay = min(delay * 2, config.retryMaxSeconds)
            }
        }
    }

    /// Opens and closes the PCM with the configured parameters on a thread of its own. Returns at once when a
    /// session holds the device (it evidently works); no session starts while the probe runs.
    func probeDevice(_ settings: CaptureSettings) async throws {
        let claimed = mutable.withLock { state in
            guard state.session == nil else { return false }
            state.probes += 1
            return true
        }
        guard claimed else { return }
        defer { mutable.withLock { $0.probes -= 1 } }
        try await OSThread.run(name: "berth-rec-probe") {
            AlsaDiagnostics.install()
            defer { AlsaDiagnostics.uninstall() }
            _ = try AlsaPCM(settings)
        }
    }

    /// Sleeps without throwing; returns early when the task is cancelled.
    func sleep(usec: Int64) async {
        guard usec > 0 else { return }
        try? await Task.sleep(for: .microseconds(usec))
    }
}
