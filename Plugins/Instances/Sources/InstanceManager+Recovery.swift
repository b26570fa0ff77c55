import BerthKit

/// Start-up: load the records and settle what a crash (kill -9 of the daemon) left half-way, then start the
/// instances that were running.
extension InstanceManager {
    func recover() async throws {
        try store.prepare()
        let records = store.loadAll(defaults: settings.health, logger: logger)
        for name in store.orphanFolders(known: Set(records.map(\.id))) {
            logger.notice("removing \"\(store.folder(name))\": an instance folder without a record (a New cut short)")
            try? store.removeFiles(name)
        }
        for record in records where !record.destroying {
            do { try writeAppConfig(record) } catch {
                logger.error("instance \"\(record.id)\": cannot write appcfg.json: \(error)")
            }
        }
        for record in records {
            instances[record.id] = Instance(record: record, store: store, supervisor: supervisor, settings: settings)
        }
        for instance in instances.values where instance.record.destroying {
            logger.notice("finishing the destroy of instance \"\(instance.id)\" that a crash interrupted")
            try await finishDestroy(instance)
        }
        var touched: Set<String> = []
        for instance in instances.values.sorted(by: { $0.id < $1.id }) where instance.record.deployPending {
            let app = instance.application
            touched.insert(app)
            if store.current(app) == instance.id {
                logger.notice("deploy of \"\(app)\" to \"\(instance.id)\" had switched the front end; finishing it")
                try instance.update { $0.deployPending = false }
                try await retire(instance.record.replaces, app: app, keep: settings.keep) { [logger] in
                    logger.info("\($0)")
                }
                try instance.update { $0.replaces = [] }
            } else {
                logger.notice(
                    "deploy of \"\(app)\" to \"\(instance.id)\" was cut short before the switch; destroying it")
                try instance.update {
                    $0.destroying = true
                    $0.running = false
                }
                try await finishDestroy(instance)
            }
        }
        if let exporter {
            for instance in list() { instance.attach(try await exporter(instance)) }
        }
        for instance in list() where instance.record.running {
            do {
                try instance.checkServer()
                try await instance.process.start()
                logger.info("instance \"\(instance.id)\" started again (it was running before the restart)")
            } catch {
                logger.error("instance \"\(instance.id)\" was running before the restart but cannot start: \(error)")
            }
        }
        // The front end of an application whose deploy was interrupted may have been written but not committed.
        for app in touched.sorted() {
            guard let id = store.current(app), let current = instances[id] else { continue }
            do {
                try await frontEnd.switchTo(app: app, instance: id, port: current.record.port) { [logger] in
                    logger.info("\($0)")
                }
            } catch {
                logger.error("cannot restore the front end of \"\(app)\": \(error)")
            }
        }
    }

    /// Brings back the newest stopped instance of `application` (kept by `keep`) in place of the current one.
    func rollbackTarget(_ application: String) throws -> Instance {
        let current = store.current(application)
        guard
            let target = instances.values.filter({
                $0.application == application && $0.id != current && !$0.record.running && !$0.record.destroying
                    && !$0.record.deployPending && $0.record.everStarted
            }).max(by: { $0.record.createdUSec < $1.record.createdUSec })
        else {
            throw BerthError.notFound(
                "application \"\(application)\" has no stopped earlier instance to roll back to (deploy with keep: 1 or more)"
            )
        }
        return target
    }

    func rollback(_ application: String, job: Job) async throws {
        let step = StepLog(job: job, total: 5)
        let target = try rollbackTarget(application)
        let old = running(of: application)
        let previous = store.current(application)
        step.next("starting \(target.id)")
        do {
            try await start(target.id)
            let health = target.record.config.health ?? settings.health
            step.next("waiting for health check \(health.checkText)")
            let checker = HealthChecker(
                spec: health, port: target.record.port, folder: target.folder, runner: runner,
                notRunning: { target.notRunningReason })
            try await checker.waitHealthy { job.log($0) }
            step.next("switching the front end of \"\(application)\" to \(target.id)")
            try await switchFrontEnd(app: application, to: target, previous: previous, log: { job.log($0) })
        } catch {
            job.log("rollback failed: \(BerthError.wrapping(error).message); stopping \(target.id) again")
            try? await stop(target.id)
            throw error
        }
        step.next("stopping \(old.map(\.id).joined(separator: ", "))")
        if !old.isEmpty && settings.drain > .zero { try? await Task.sleep(for: settings.drain) }
        for instance in old where instance.id != target.id {
            try instance.update { $0.running = false }
            await instance.process.stop()
        }
        step.next("rolled back \"\(application)\" to \(target.id)")
    }
}
