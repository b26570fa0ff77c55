import BerthKit

/// What served an application, in order, and the moves over it: Rollback (back to the release that served before
/// the current one), Switch (to an instance made and started by hand), the retention of old releases (`keep`) and
/// the destroy of the instance that serves.
///
/// The history is the application's instances that served, ordered by when the front end switched to them
/// (`InstanceRecord.servedUSec`, written with the record, so it survives restarts and crashes). A deploy or a
/// Switch adds the instance it switches to; a Rollback removes the release it leaves, so a second Rollback goes
/// one further back (v3 → v2 → v1) rather than forth again. `keep` counts the stopped releases kept besides the
/// serving one, the newest in the history first: with `keep: 1`, deploy v1, deploy v2, rollback (v1 serves),
/// deploy v4 keeps v1 (it served before v4) and destroys v2.
extension InstanceManager {
    /// The application's releases that served, newest first.
    func history(of application: String) -> [Instance] {
        instances.values.filter {
            $0.application == application && $0.record.servedUSec > 0 && !$0.record.destroying
                && !$0.record.deployPending
        }.sorted { $0.record.servedUSec > $1.record.servedUSec }
    }

    /// Records that the front end now serves `instance`: the newest in its application's history.
    func markServed(_ instance: Instance) throws {
        let now = SystemClock.wallUSec()
        let newest = history(of: instance.application).first?.record.servedUSec ?? 0
        try instance.update { $0.servedUSec = max(now, newest + 1) }
    }

    // MARK: - Rollback

    /// The release that served before the current one.
    func rollbackTarget(_ application: String) throws -> Instance {
        let current = store.current(application)
        guard let target = history(of: application).first(where: { $0.id != current }) else {
            throw BerthError.notFound(
                "application \"\(application)\" has no earlier release to roll back to: none that served before "
                    + "\(current.map { "\"\($0)\"" } ?? "now") is kept (deploy with keep: 1 or more)")
        }
        return target
    }

    /// Starts the release that served before the current one, checks it with the health check its deploy used,
    /// switches the front end to it and stops the one it replaces (which leaves the history).
    func rollback(_ application: String, job: Job) async throws {
        let step = StepLog(job: job, total: 5)
        let target = try rollbackTarget(application)
        let old = running(of: application).filter { $0.id != target.id }
        let previous = store.current(application)
        let wasRunning = target.record.running
        step.next(wasRunning ? "\(target.id) already runs" : "starting \(target.id)")
        do {
            if !wasRunning { try await start(target.id) }
            let health = healthSpec(of: target)
            step.next(
                "waiting for health check \(health.checkText) of \(target.id) (timeout \(health.timeout), "
                    + "min_ready \(health.minReady))")
            try await waitHealthy(target, health) { job.log($0) }
            step.next("switching the front end of \"\(application)\" to \(target.id)")
            try await switchFrontEnd(app: application, to: target, previous: previous, log: { job.log($0) })
        } catch {
            job.log("rollback failed: \(BerthError.wrapping(error).message)")
            if !wasRunning {
                job.log("stopping \(target.id) again")
                try? await stop(target.id)
            }
            throw error
        }
        // The release rolled back from leaves the history: the next Rollback goes further back.
        if let previous, previous != target.id, let from = instances[previous] {
            try from.update { $0.servedUSec = 0 }
        }
        step.next("stopping \(old.isEmpty ? "nothing" : old.map(\.id).joined(separator: ", "))")
        if !old.isEmpty && settings.drain > .zero { try? await Task.sleep(for: settings.drain) }
        for instance in old {
            try instance.update { $0.running = false }
            await instance.process.stop()
        }
        step.next("rolled back \"\(application)\" to \(target.id)")
    }

    /// The health check an instance's deploy used: its own, else the plugin's.
    func healthSpec(of instance: Instance) -> HealthSpec { instance.record.config.health ?? settings.health }

    /// Waits until `instance` passes `health` on its port and in its folder (a process that stopped fails at once).
    func waitHealthy(_ instance: Instance, _ health: HealthSpec, log: @escaping @Sendable (String) -> Void)
        async throws
    {
        let checker = HealthChecker(
            spec: health, port: instance.record.port, folder: instance.folder, runner: runner,
            notRunning: { instance.notRunningReason })
        try await checker.waitHealthy(log: log)
    }

    // MARK: - Retention

    /// Stops the given old instances, then destroys the stopped instances of `app` but the `keep` newest releases
    /// of its history besides the serving one.
    func retire(_ ids: [String], app: String, keep: Int, log: @escaping @Sendable (String) -> Void) async throws {
        for id in ids {
            guard let old = instances[id] else { continue }
            try old.update { $0.running = false }
            await old.process.stop()
            log("stopped \(id)")
        }
        let current = store.current(app)
        let kept = history(of: app).filter { $0.id != current && !$0.record.running }.prefix(keep).map(\.id)
        let stopped = instances.values.filter {
            $0.application == app && $0.id != current && !$0.record.running && !$0.record.destroying
                && !$0.record.deployPending && $0.record.everStarted && !kept.contains($0.id)
        }.sorted { $0.record.createdUSec < $1.record.createdUSec }
        for old in stopped {
            try old.update { $0.destroying = true }
            try await finishDestroy(old)
            log("destroyed \(old.id)")
        }
        if !kept.isEmpty { log("kept \(kept.joined(separator: ", ")) for rollback") }
    }

    // MARK: - Switch

    /// Switch's checks, before its job starts: an instance of an application, running, not the one serving.
    func switchTarget(_ id: String) throws -> Instance {
        let instance = try instance(id)
        let app = instance.application
        guard !app.isEmpty else {
            throw BerthError.invalidArgument(
                "instance \"\(id)\" belongs to no application (its config has no application_name): it has no front end"
            )
        }
        guard instance.record.running else {
            throw BerthError.failed("instance \"\(id)\" is not running: start it first (Start), then switch to it")
        }
        guard store.current(app) != id else {
            throw BerthError.alreadyExists("the front end of \"\(app)\" already points at \"\(id)\"")
        }
        return instance
    }

    /// sarge's rolling steps by hand: checks the health of an instance made and started by its owner (its own
    /// check, else the plugin's), then points the front end at it. The instance that served keeps running: stop it
    /// when done.
    func switchTo(_ id: String, job: Job) async throws {
        let instance = try switchTarget(id)
        let app = instance.application
        let previous = store.current(app)
        let health = healthSpec(of: instance)
        job.log(
            "[1/2] waiting for health check \(health.checkText) of \(id) (timeout \(health.timeout), "
                + "min_ready \(health.minReady))")
        try await waitHealthy(instance, health) { job.log($0) }
        job.log("[2/2] switching the front end of \"\(app)\" to \(id)")
        try await switchFrontEnd(app: app, to: instance, previous: previous, log: { job.log($0) })
        try markServed(instance)
        if let previous, previous != id, instances[previous]?.record.running == true {
            job.log("\(previous) served before and still runs: stop it when it has drained")
        }
    }

    // MARK: - Destroy of the serving instance

    /// Destroy's check: the instance that serves its application is `Busy` unless forced.
    func checkDestroy(_ id: String, force: Bool) throws -> Instance {
        let instance = try instance(id)
        let app = instance.application
        if !force, store.current(app) == id {
            throw BerthError.busy(
                "instance \"\(id)\" serves application \"\(app)\" (its front end points at it): switch to another "
                    + "instance first (Switch, Deploy or Rollback), or destroy it with force (ForceDestroy, berthctl "
                    + "instances destroy --force), which switches the front end to another running instance of "
                    + "\"\(app)\" if one is healthy, or says that nothing serves it")
        }
        return instance
    }

    /// Before a forced destroy of the instance that serves: the front end switches to the newest other running
    /// instance of the application that passes its health check; without one, nothing serves, and that is said.
    func switchAway(from instance: Instance, log: @escaping @Sendable (String) -> Void) async {
        let app = instance.application
        guard store.current(app) == instance.id else { return }
        let others = running(of: app).filter { $0.id != instance.id }.reversed()
        for other in others {
            do {
                try await waitHealthy(other, healthSpec(of: other), log: log)
                try await switchFrontEnd(app: app, to: other, previous: instance.id, log: log)
                try markServed(other)
                log("the front end of \"\(app)\" now points at \(other.id)")
                return
            } catch {
                log("cannot switch the front end of \"\(app)\" to \(other.id): \(BerthError.wrapping(error).message)")
            }
        }
        try? store.setCurrent(app, nil)
        let said =
            "nothing serves application \"\(app)\" now: \(instance.id) was the only instance running; "
            + "its front end (\(frontEnd.filePath(app))) names a port where nothing listens until the next deploy"
        log(said)
        logger.warning("\(said)")
    }
}
