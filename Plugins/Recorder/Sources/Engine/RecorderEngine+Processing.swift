import BerthKit
import Glibc

/// What the processing loop works with, built at `start()`.
struct ProcessingRuntime: Sendable {
    let config: ProcessingConfig
    let runner: ProcessorRunner?
    let policy: SavingPolicy
    let doorbell = Doorbell()

    func processor(named name: String) -> ProcessorConfig? { config.processors.first { $0.name == name } }
}

extension RecorderEngine {
    /// The processing loop: runs queued processor runs (at most `concurrency` at a time, each in its own task),
    /// decides each recording whose runs are all over by the saving filters, and every `rescan_interval` marks
    /// recordings whose files were removed by hand. It never blocks recording: processors are other processes
    /// and the loop only awaits them. Wakes at each saved recording, each finished run, and once a second.
    func processingLoop(_ runtime: Runtime, _ processing: ProcessingRuntime) async {
        let store = runtime.store
        var running: [Task<Void, Never>] = []
        var lastRescan: Int64?
        await refreshCounts(runtime)
        while !Task.isCancelled {
            running.removeAll { $0.isCancelled }
            if mutable.withLock({ $0.countsDirty }) { await refreshCounts(runtime) }
            let now = clock()
            if lastRescan.map({ now - $0 >= Int64(config.rescanIntervalSeconds * 1e6) }) ?? true {
                lastRescan = now
                _ = await reconcileMissing(runtime, only: nil)
            }
            await decideFinished(runtime, processing)
            let busy = mutable.withLock { $0.processorsRunning }
            let free = processing.config.concurrency - busy
            if free > 0, processing.runner != nil {
                let claims =
                    (try? await OSThread.run(name: "berth-rec-queue") {
                        try store.claimTasks(limit: free, atUSec: now) { row in FileIO.fileSize(row.path) != nil }
                    }) ?? []
                for claim in claims {
                    mutable.withLock { $0.processorsRunning += 1 }
                    running.append(
                        Task {
                            await self.process(claim, runtime, processing)
                            self.mutable.withLock { $0.processorsRunning -= 1 }
                            processing.doorbell.ring()
                        })
                }
                if !claims.isEmpty { await refreshCounts(runtime) }
            }
            let dirty = mutable.withLock { $0.countsDirty }
            await processing.doorbell.wait(usec: dirty ? 500_000 : 1_000_000)
        }
        for task in running { task.cancel() }
        for task in running { await task.value }
    }

    /// One processor run: the command, then its detections stored with the run marked done in one transaction (and
    /// announced), or the failure recorded and the run queued again until its attempts are used up.
    func process(_ claim: ProcessingClaim, _ runtime: Runtime, _ processing: ProcessingRuntime) async {
        let store = runtime.store
        guard let processor = processing.processor(named: claim.processor), let runner = processing.runner else {
            return
        }
        let deployment = try? await OSThread.run(name: "berth-rec-queue") {
            try store.deployment(activeAtUSec: claim.recording.startUSec)
        }
        let started = clock()
        let outcome = await runner.run(processor, claim, deployment: deployment ?? nil)
        if Task.isCancelled { return }  // the run goes back to the queue at the next start
        let now = clock()
        switch outcome {
        case .detections(let detections, let diagnostics):
            for line in diagnostics.prefix(20) {
                logger.info("recorder: processor \"\(processor.name)\" on \(claim.recording.id): \(line)")
            }
            let stored =
                (try? await OSThread.run(name: "berth-rec-queue") {
                    try store.finishTask(claim, detections: detections, atUSec: now)
                }) ?? false
            if stored {
                let seconds = Double(now - started) / 1e6
                logger.info(
                    "recorder: processor \"\(processor.name)\" found \(detections.count) detection(s) in \(claim.recording.id) (\(seconds) s)"
                )
                for d in detections { events.detection(claim.recording.id, d) }
            }
        case .failed(let reason):
            let retry: Int64? =
                claim.attempt < processor.attempts
                ? now + Int64(processor.retryDelaySeconds * 1e6) << Int64(min(claim.attempt - 1, 20)) : nil
            noteError(
                "\(reason) (recording \(claim.recording.id), attempt \(claim.attempt) of \(processor.attempts)"
                    + (retry == nil ? "; giving up: the recording is kept" : "; will retry") + ")")
            try? await OSThread.run(name: "berth-rec-queue") {
                try store.failTask(claim, reason: reason, retryAtUSec: retry, atUSec: now)
            }
        }
        await refreshCounts(runtime)
    }

    /// A recording the saving filters would delete.
    struct Doomed: Sendable {
        var row: RecordingRow
        var reason: String
        var detections: Int
        var finishedUSec: Int64?
    }

    /// Applies the saving filters to every undecided recording whose runs are all over: a recording a processor
    /// failed on is kept (and marked by its failed run); otherwise kept or deleted as the filters say. With
    /// `wait_for_uplink`, a recording with detections is deleted only after `uplink_grace` and once the uplink has
    /// nothing about it left to deliver; until then it stays undecided (pending).
    func decideFinished(_ runtime: Runtime, _ processing: ProcessingRuntime) async {
        let store = runtime.store
        let policy = processing.policy
        let judged = try? await OSThread.run(name: "berth-rec-decide") { [clock, logger] () -> (Int, [Doomed])? in
            let rows = try store.recordingsToDecide(limit: 256)
            if rows.isEmpty { return nil }
            var doomed: [Doomed] = []
            for row in rows {
                let summary = try store.processingSummary(recordingID: row.id)
                if let failure = summary.failures.first {
                    logger.notice(
                        "recorder: keeping \(row.id): processor \"\(failure.processor)\" failed (\(failure.reason))")
                    try store.decide(id: row.id, kept: true, atUSec: clock())
                    continue
                }
                let deployment = try row.deploymentID.flatMap { _ in try store.deployment(activeAtUSec: row.startUSec) }
                let decision = policy.decide(
                    startUSec: row.startUSec, bestScore: summary.bestScore,
                    position: deployment.map { ($0.latitude, $0.longitude) })
                if decision.keep {
                    try store.decide(id: row.id, kept: true, atUSec: clock())
                } else {
                    doomed.append(
                        Doomed(
                            row: row, reason: decision.reason, detections: summary.detections,
                            finishedUSec: summary.finishedUSec))
                }
            }
            return (rows.count, doomed)
        }
        guard let (count, candidates) = judged ?? nil else { return }
        let doomed = await waitingForUplink(candidates, processing.policy.config)
        let deleted = (try? await OSThread.run(name: "berth-rec-decide") { [clock, logger] () -> [(String, String)] in
            var deleted: [(String, String)] = []
            for d in doomed {
                let now = clock()
                try FileIO.remove(d.row.path)
                try store.decide(id: d.row.id, kept: false, atUSec: now)
                if try store.markDeleted(id: d.row.id, reason: d.reason, atUSec: now) {
                    logger.info("recorder: deleted \(d.row.path): \(d.reason)")
                    deleted.append((d.row.id, d.reason))
                }
            }
            return deleted
        }) ?? []
        for (id, reason) in deleted { events.recordingDeleted(id, reason) }
        if count > 0 { await refreshCounts(runtime) }
    }

    /// The recordings that may go now: all of them without `wait_for_uplink`; with it, those without detections,
    /// and those whose processing ended `uplink_grace` ago and that the uplink has nothing pending about (or
    /// there is no uplink). When the uplink cannot be asked, recordings with detections wait.
    func waitingForUplink(_ candidates: [Doomed], _ saving: SavingConfig) async -> [Doomed] {
        guard saving.waitForUplink, let uplink, candidates.contains(where: { $0.detections > 0 }) else {
            return candidates
        }
        let now = clock()
        let grace = Int64(saving.uplinkGraceSeconds * 1e6)
        let settled = candidates.filter { $0.detections == 0 || ($0.finishedUSec ?? .min) <= now - grace }
        guard settled.contains(where: { $0.detections > 0 }) else { return settled }
        let answer: UplinkProbe.Answer
        do {
            answer = try await uplink.pendingRecordings()
            mutable.withLock { $0.uplinkProblem = nil }
        } catch {
            let problem = "cannot ask the uplink what it still has to deliver: \(BerthError.wrapping(error).message)"
            let first = mutable.withLock { s -> Bool in
                defer { s.uplinkProblem = problem }
                return s.uplinkProblem != problem
            }
            if first { noteError(problem + "; recordings with detections are kept until it answers") }
            return settled.filter { $0.detections == 0 }
        }
        switch answer {
        case .noUplink: return settled
        case .unknown: return settled.filter { $0.detections == 0 }
        case .pending(let ids): return settled.filter { $0.detections == 0 || !ids.contains($0.row.id) }
        }
    }

    /// Marks recordings whose files are gone (removed by hand) deleted with the reason "missing", and announces
    /// them. `only`: just these rows (a listing); nil: every recording not yet marked. A file still being written
    /// (its `.partial` exists) is not missing; the partial is looked at first, so a rename in between is never
    /// taken for a loss.
    @discardableResult
    func reconcileMissing(_ runtime: Runtime, only rows: [RecordingRow]?) async -> [String] {
        let store = runtime.store
        let layout = runtime.resolved.layout
        let missing =
            (try? await OSThread.run(name: "berth-rec-rescan") { [clock] () -> [String] in
                let candidates =
                    try rows.map { $0.filter { $0.deletedUSec == nil }.map { ($0.id, $0.path, $0.startUSec) } }
                    ?? store.liveRecordings().map { ($0.id, $0.path, $0.startUSec) }
                var gone: [String] = []
                for (id, path, start) in candidates {
                    if FileIO.fileSize(layout.partialPath(id: id, startUSec: start)) != nil { continue }
                    if FileIO.fileSize(path) != nil { continue }
                    if try store.markDeleted(id: id, reason: "missing", atUSec: clock()) { gone.append(id) }
                }
                return gone
            }) ?? []
        for id in missing {
            logger.warning("recorder: the file of recording \(id) is gone (removed by hand?); marked deleted: missing")
            events.recordingDeleted(id, "missing")
        }
        if !missing.isEmpty { await refreshCounts(runtime) }
        return missing
    }

    /// Checks every recording's file now (`Rescan()`): returns how many were found missing and marked.
    func rescan() async throws -> Int {
        let runtime = try requireRuntime()
        return await reconcileMissing(runtime, only: nil).count
    }

    /// Deletes a recording by a person's choice: the file goes, the row stays marked "deleted by request", queued
    /// runs are canceled. `.notFound` for an unknown id or one already deleted.
    func deleteRecording(id: String) async throws {
        let runtime = try requireRuntime()
        let store = runtime.store
        try await OSThread.run(name: "berth-rec-db") { [clock] in
            guard let row = try store.recording(id: id) else {
                throw BerthError.notFound("there is no recording \(BerthError.quote(id))")
            }
            if let deleted = row.deletedUSec {
                throw BerthError.notFound(
                    "recording \(id) was already deleted at \(MetadataStore.text(deleted)) UTC (\(row.deletedReason ?? ""))"
                )
            }
            try FileIO.remove(row.path)
            try store.markDeleted(id: id, reason: "deleted by request", atUSec: clock())
        }
        logger.notice("recorder: recording \(id) deleted by request")
        events.recordingDeleted(id, "deleted by request")
        await refreshCounts(runtime)
    }

    /// Reads the counts by fate for `Status()` and the heartbeat (which must not touch the database). The counts
    /// scan the recordings, so they are read at most every half second (unless `force`); a change in between is
    /// read by the processing loop's next pass.
    func refreshCounts(_ runtime: Runtime, force: Bool = false) async {
        let now = clock()
        let due = mutable.withLock { s -> Bool in
            if !force, let last = s.countsReadUSec, now - last < 500_000, now >= last {
                s.countsDirty = true
                return false
            }
            s.countsDirty = false
            s.countsReadUSec = now
            return true
        }
        guard due,
            let counts = try? await OSThread.run(name: "berth-rec-db", { try runtime.store.recordingCounts() })
        else { return }
        mutable.withLock { $0.counts = counts }
    }

    /// Tells the processing loop that a recording was saved.
    func wakeProcessing() { mutable.withLock { $0.processing }?.doorbell.ring() }
}
