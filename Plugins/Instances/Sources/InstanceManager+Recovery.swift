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
}
