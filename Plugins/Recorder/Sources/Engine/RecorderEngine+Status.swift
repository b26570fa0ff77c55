import BerthKit

extension RecorderEngine {
    /// acoupi's `deployment status`, honest: `daemon`, `workers` (`ok`, or `notok` with the reason for the capture
    /// thread and the writer), `program` (`ok`, or `unhealthy` with the failing checks and config problems),
    /// `deployment` (`active` with its fields, or `inactive`), then the recorder's own fields. Non-blocking: free
    /// space is the last value measured.
    func status() -> [String: StatusValue] {
        let s = mutable.withLock { $0 }
        let liveOverruns = s.session?.capture.overruns.load(ordering: .relaxed) ?? 0
        var out: [String: StatusValue] = [:]
        out["daemon"] = .string(s.runtime != nil ? "active" : "inactive")
        out["state"] = .string(s.state.rawValue)
        out["state_reason"] = .string(s.reason ?? "")

        let capture = s.captureProblem.map { "notok: \($0)" } ?? "ok"
        let shortage = s.runtime?.storage.shortage
        let writer = (s.writerProblem ?? shortage).map { "notok: \($0)" } ?? "ok"
        out["workers"] = .string(capture == "ok" && writer == "ok" ? "ok" : "notok")
        out["workers.capture"] = .string(capture)
        out["workers.writer"] = .string(writer)

        var problems = config.problems(zoneDirectory: zoneDirectory)
        problems += s.lastChecks.filter { !$0.passed && $0.name != "config" }.map { "\($0.name): \($0.message)" }
        if let stop = s.policyStop { problems.append("low_disk_policy stop: \(stop)") }
        out["program"] = .string(problems.isEmpty ? "ok" : "unhealthy")
        out["program.problems"] = .strings(problems)

        if let d = s.deployment {
            out["deployment"] = .string("active")
            out["deployment.id"] = .string(d.id)
            out["deployment.name"] = .string(d.name)
            out["deployment.latitude"] = .double(d.latitude)
            out["deployment.longitude"] = .double(d.longitude)
            out["deployment.started_usec"] = .uint(UInt64(max(0, d.startedUSec)))
        } else {
            out["deployment"] = .string("inactive")
        }

        // Without a deployment nothing records: no "next recording" then.
        if case .success(let resolved) = resolved {
            out["schedule"] = .string(describe(resolved.schedule, withNext: s.deployment != nil))
        }
        out["device"] = .string(config.device)
        out["sample_rate"] = .uint(UInt64(max(0, config.sampleRate)))
        out["channels"] = .uint(UInt64(max(0, config.channels)))
        out["format"] = .string(config.format)
        out["recordings_count"] = .uint(UInt64(s.recordingsCount))
        out["last_recording"] = .string(s.lastRecording?.path ?? "")
        out["last_recording_usec"] = .uint(UInt64(max(0, s.lastRecording?.startUSec ?? 0)))
        out["next_recording_usec"] = .uint(UInt64(max(0, s.nextRecordingUSec ?? 0)))
        out["overruns"] = .uint(UInt64(s.finishedOverruns + liveOverruns))
        out["free_bytes"] = .uint(s.runtime?.storage.lastFreeBytes ?? 0)
        out["min_free_bytes"] = .uint(config.minFreeBytes)
        out["low_disk_policy"] = .string(config.lowDiskPolicy.rawValue)
        out["last_heartbeat_usec"] = .uint(UInt64(max(0, s.lastHeartbeatUSec ?? 0)))
        out["errors"] = .strings(s.recentErrors)
        for (key, value) in s.counts.fields { out["recordings_" + key] = .uint(UInt64(max(0, value))) }
        out["processors"] = .strings(config.processing.processors.map(\.name))
        out["processors_running"] = .uint(UInt64(max(0, s.processorsRunning)))
        return out
    }

    /// The values behind the D-Bus properties of `org.berth.Berth1.Recorder`.
    struct Properties: Sendable, Equatable {
        var state: RecorderState
        var deployment: Deployment?
        var device: String
        var sampleRate: UInt32
        var channels: UInt32
        var recordingsCount: UInt64
        var lastRecording: String
        var freeBytes: UInt64
        var lastHeartbeatUSec: UInt64
    }

    var properties: Properties {
        let s = mutable.withLock { $0 }
        return Properties(
            state: s.state, deployment: s.deployment, device: config.device,
            sampleRate: UInt32(clamping: config.sampleRate), channels: UInt32(clamping: config.channels),
            recordingsCount: UInt64(s.recordingsCount), lastRecording: s.lastRecording?.path ?? "",
            freeBytes: s.runtime?.storage.lastFreeBytes ?? 0,
            lastHeartbeatUSec: UInt64(max(0, s.lastHeartbeatUSec ?? 0)))
    }

    // MARK: Heartbeat

    func heartbeatLoop(_ runtime: Runtime) async {
        let interval = Int64(config.heartbeatInterval * 1e6)
        while !Task.isCancelled {
            await heartbeat(runtime)
            await sleep(usec: interval)
        }
    }

    /// Measures, stores and announces one heartbeat: state, last recording, recordings and overruns since the
    /// previous beat, free bytes, errors since the previous beat. A failure to store it is itself reported.
    @discardableResult
    func heartbeat(_ runtime: Runtime) async -> HeartbeatRow {
        let free = try? await OSThread.run(name: "berth-rec-beat") { try runtime.storage.freeBytes() }
        let now = clock()
        await refreshCounts(runtime, force: true)
        var row = mutable.withLock { state in
            let overruns = state.finishedOverruns + (state.session?.capture.overruns.load(ordering: .relaxed) ?? 0)
            defer {
                state.overrunsAtLastBeat = overruns
                state.recordingsSinceBeat = 0
                state.errorsSinceBeat = []
                state.lastHeartbeatUSec = now
            }
            var errors = state.errorsSinceBeat
            if let problem = state.captureProblem { errors.append("capture: \(problem)") }
            return HeartbeatRow(
                timeUSec: now, state: state.state.rawValue, deploymentID: state.deployment?.id,
                lastRecordingUSec: state.lastRecording?.startUSec, recordings: state.recordingsSinceBeat,
                overruns: overruns - state.overrunsAtLastBeat, freeBytes: free, errors: errors)
        }
        do {
            let stored = row
            try await OSThread.run(name: "berth-rec-beat") { try runtime.store.insertHeartbeat(stored) }
        } catch {
            let message = "cannot store the heartbeat: \(BerthError.wrapping(error).message)"
            noteError(message)
            row.errors.append(message)
        }
        var status: [String: StatusValue] = [
            "time_usec": .uint(UInt64(max(0, now))), "state": .string(row.state),
            "recordings": .uint(UInt64(row.recordings)), "overruns": .uint(UInt64(row.overruns)),
            "errors": .strings(row.errors), "deployment_id": .string(row.deploymentID ?? ""),
            "last_recording_usec": .uint(UInt64(max(0, row.lastRecordingUSec ?? 0))),
        ]
        if let free { status["free_bytes"] = .uint(free) }
        for (key, value) in mutable.withLock({ $0.counts }).fields { status[key] = .uint(UInt64(max(0, value))) }
        events.heartbeat(status)
        return row
    }
}

extension RecordingCounts {
    /// `pending`, `processed`, `failed`, `kept`, `deleted`.
    var fields: [(String, Int64)] {
        [("pending", pending), ("processed", processed), ("failed", failed), ("kept", kept), ("deleted", deleted)]
    }
}
