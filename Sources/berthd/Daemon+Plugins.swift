import BerthKit
import Glibc

extension Daemon {
    /// Finds and loads every plugin file, exports its Plugin object and checks its config section.
    func loadPlugins(config: DaemonConfig, root: ConfigNode?) async throws {
        let (files, _) = Self.discover(options: options, config: config)
        var records: [PluginRecord] = []
        var seen: Set<String> = []
        for file in files {
            var result = PluginLoader.load(file)
            var id = PluginLoader.expectedID(forFile: file)
            if case .success(let plugin) = result {
                if plugin.id.isEmpty || !plugin.id.allSatisfy({ $0.isLowercase || $0.isNumber || $0 == "_" }) {
                    result = .failure(PluginFailure(code: "invalid-id", message: "plugin file \"\(file)\" names itself \"\(plugin.id)\": ids are lower-case letters, digits and _"))
                } else {
                    id = plugin.id
                }
            }
            if seen.contains(id) {
                result = .failure(PluginFailure(code: "duplicate-id", message: "plugin file \"\(file)\" has the id \"\(id)\" of a plugin already loaded"))
                id = id + "_" + String(records.count)
            }
            seen.insert(id)
            let failure: PluginFailure? = if case .failure(let f) = result { f } else { nil }
            let plugin: (any BerthPlugin)? = if case .success(let p) = result { p } else { nil }
            let object = try await connection.export(
                path: "/org/berth/Berth1/plugin/" + id,
                interfaces: [PluginRecord.interface(id: id, version: plugin?.version ?? "", path: file, failure: failure)])
            let record = PluginRecord(id: id, path: file, plugin: plugin, object: object)
            if let failure { logger.error("plugin \(id): \(failure.message)") }
            records.append(record)
        }
        try config.checkSections(knownPlugins: seen, root: root)
        storeRecords(records)
    }

    func storeRecords(_ records: [PluginRecord]) {
        let manager = withState { s -> BusObject? in
            s.records = records
            return s.manager
        }
        manager?.set("Plugins", .objectPaths(records.map(\.object.path)))
    }

    /// Starts the plugin under its lifecycle lock; see `startLocked`.
    @discardableResult
    func start(_ record: PluginRecord, section: ConfigNode?) async -> PluginFailure? {
        await record.lifecycle.withLock { await self.startLocked(record, section: section, retrying: false) }
    }

    /// Validates the section and starts the plugin; any failure leaves it `failed` with the reason. A failure that
    /// can pass (a full disk, a device not there yet: anything but an invalid config or an unsupported host) is
    /// retried by itself with backoff (`PluginRecord.retryDelay`), and the plugin shows `failed`/`start-failed`
    /// while it waits. The caller holds `record.lifecycle`.
    func startLocked(_ record: PluginRecord, section: ConfigNode?, retrying: Bool) async -> PluginFailure? {
        guard let plugin = record.plugin else { return nil }
        if !retrying { record.cancelRetry(resetBackoff: true) }
        record.setSection(section)
        if withState({ $0.config.disabledPlugins.contains(record.id) }) {
            record.setState("disabled")
            return nil
        }
        do {
            try plugin.validate(config: section)
        } catch {
            let failure = PluginFailure(code: "invalid-config", message: BerthError.wrapping(error).message)
            record.setState("failed", failure: failure)
            logger.error("plugin \(record.id): \(failure.message)")
            return failure
        }
        do {
            let context = try makeContext(for: record, section: section)
            try await plugin.start(context: context)
            record.resetBackoff()
            record.setState("active", failure: PluginFailure(code: "", message: ""))
            logger.info("plugin \(record.id) \(plugin.version) active")
            return nil
        } catch {
            let error = BerthError.wrapping(error)
            let message = "plugin \"\(record.id)\" failed to start: \(error.message)"
            let failure = PluginFailure(code: Self.startFailureCode(error), message: message)
            record.setState("failed", failure: failure)
            await plugin.stop()
            if failure.code == "start-failed", !withState({ $0.stopping }) {
                let delay = record.scheduleRetry { token, delay in
                    Task { [weak self] in await self?.retry(record, token: token, after: delay) }
                }
                logger.error("\(message) (retrying in \(delay.components.seconds) s)")
            } else {
                logger.error("\(message)")
            }
            return failure
        }
    }

    /// `start-failed` (retried) for a failure that can pass; `invalid-config`/`not-supported` (not retried) for one
    /// that cannot pass without a change of config or host.
    static func startFailureCode(_ error: BerthError) -> String {
        switch error.code {
        case .invalidConfig, .invalidArgument: "invalid-config"
        case .notSupported: "not-supported"
        default: "start-failed"
        }
    }

    /// The automatic retry: sleeps, then starts the plugin again unless something else started, restarted,
    /// disabled or stopped it meanwhile (which cancels or replaces this retry).
    private func retry(_ record: PluginRecord, token: UInt64, after delay: Duration) async {
        do { try await Task.sleep(for: delay) } catch { return }
        await record.lifecycle.withLock {
            guard record.claimRetry(token), !self.withState({ $0.stopping }), !record.isActive else { return }
            let section = self.withState { $0.config.sections[record.id] }
            self.logger.info("plugin \(record.id): retrying its start")
            _ = await self.startLocked(record, section: section, retrying: true)
        }
    }

    /// `Manager.RestartPlugin`: stops the plugin if it is active and starts it again (a pending retry is dropped
    /// and the backoff starts over). Fails when the plugin does not exist, did not load, is disabled, or when its
    /// start fails (then it is `failed`, and retried if the reason can pass).
    func restartPlugin(id: String) async throws {
        let (record, all, disabled, stopping) = withState { s in
            (s.records.first { $0.id == id }, s.records.map(\.id), s.config.disabledPlugins.contains(id), s.stopping)
        }
        guard let record else {
            throw BerthError.notFound(
                "plugin \"\(id)\" does not exist (plugins: \(all.isEmpty ? "none" : all.sorted().joined(separator: ", ")))")
        }
        guard let plugin = record.plugin else {
            throw BerthError(
                .pluginFailed, "plugin \"\(id)\" cannot be restarted: its file did not load (\(record.lastError)): \(record.lastErrorMessage)")
        }
        if disabled {
            throw BerthError.busy("plugin \"\(id)\" is disabled (disabled_plugins in \(paths.configFile)): enable it and reload")
        }
        if stopping { throw BerthError.busy("plugin \"\(id)\" cannot be restarted: berthd is stopping") }
        let failure = await record.lifecycle.withLock { () async -> PluginFailure? in
            record.cancelRetry(resetBackoff: true)
            if record.isActive {
                logger.info("plugin \(id): restarting by request")
                await plugin.stop()
                record.setState("loaded")
            }
            let section = self.withState { $0.config.sections[id] }
            return await self.startLocked(record, section: section, retrying: false)
        }
        if let failure { throw BerthError(.pluginFailed, failure.message) }
    }

    /// Stops an active plugin under its lifecycle lock and drops a pending retry.
    func stopPlugin(_ record: PluginRecord) async {
        record.cancelRetry(resetBackoff: false)
        await record.lifecycle.withLock {
            if record.isActive { await record.plugin?.stop() }
        }
    }

    private func makeContext(for record: PluginRecord, section: ConfigNode?) throws -> PluginContext {
        let stateDir = paths.stateDir + "/" + record.id
        let runtimeDir = paths.runtimeDir + "/" + record.id
        try FileSystem.makeDirectories(stateDir, mode: 0o755)
        try FileSystem.makeDirectories(runtimeDir, mode: 0o700)
        return PluginContext(
            id: record.id, config: section, stateDirectory: stateDir, runtimeDirectory: runtimeDir,
            logger: Logger(label: "berth.\(record.id)"), connection: connection, jobs: jobs, mode: options.mode,
            peers: { [weak self] id in self?.activePlugin(id) },
            importer: { [weak self] path, replace, dryRun in
                guard let self else { throw BerthError.failed("berthd is shutting down") }
                return try await self.importConfig(path: path, replace: replace, dryRun: dryRun)
            })
    }

    func activePlugin(_ id: String) -> (any BerthPlugin)? {
        withState { $0.records.first { $0.id == id && $0.isActive }?.plugin }
    }

    func pluginRows() -> [[DBusValue]] {
        withState { $0.records }.map {
            [.string($0.id), .string($0.plugin?.version ?? ""), .string($0.state), .objectPath($0.object.path)]
        }
    }

    // MARK: Reload

    /// Re-reads the config; everything is checked before anything is applied, then only what changed is applied.
    /// The files are read before the gate is taken, on a thread of their own (see `DaemonConfig.read`).
    func reload() async throws {
        let (config, root) = try await DaemonConfig.read(paths)
        try await withGate {
            // Two reloads read at once (SIGHUP and Reload()) may take the gate in either order: the files read
            // last win, never an older read applied after a newer one.
            guard config.generation > withState({ $0.config.generation }) else { return }
            let records = withState { $0.records }
            try config.checkSections(knownPlugins: Set(records.map(\.id)), root: root)
            for record in records where !config.disabledPlugins.contains(record.id) && record.isActive {
                try record.plugin?.validate(config: config.sections[record.id])
            }
            BerthLogging.setLevel(config.logLevel)
            withState { $0.config = config }
            var failures: [String] = []
            for record in PluginDiscovery.startOrder(records) {
                let section = config.sections[record.id]
                let disabled = config.disabledPlugins.contains(record.id)
                if disabled {
                    await stopPlugin(record)
                    if record.plugin != nil { record.setState("disabled") }
                } else if record.isActive {
                    guard section?.strippingMarks() != record.currentSection?.strippingMarks() else { continue }
                    // Under the plugin's lifecycle lock: a RestartPlugin or a retry never runs beside its reload.
                    let failure = await record.lifecycle.withLock { () async -> String? in
                        guard record.isActive else { return nil }
                        do {
                            try await record.plugin?.reload(config: section)
                            record.setSection(section)
                            return nil
                        } catch {
                            return "plugin \"\(record.id)\": \(BerthError.wrapping(error).message)"
                        }
                    }
                    if let failure { failures.append(failure) }
                } else if record.plugin != nil,
                    record.state == "disabled" || record.lastError == "start-failed"
                        || section?.strippingMarks() != record.currentSection?.strippingMarks()
                {
                    await start(record, section: section)
                }
            }
            logger.info("configuration reloaded from \(paths.configFile)")
            if !failures.isEmpty { throw BerthError.failed("reload partly failed: " + failures.joined(separator: "; ")) }
        }
    }

    // MARK: Config as code

    func importConfig(path: String, replace: Bool, dryRun: Bool) async throws -> [ConfigChange] {
        guard path.hasPrefix("/") else {
            throw BerthError.invalidArgument("ImportConfig needs an absolute path, got \"\(path)\"")
        }
        // Read and parse before the gate and off the cooperative pool: a FIFO or a device is refused at once (see
        // YAMLParser.readFile) and a large file holds up no Reload.
        let parsed = try await OSThread.run(name: "berth-import") { () throws -> ConfigNode? in
            guard FileSystem.exists(path) else { throw BerthError.notFound("config file \"\(path)\" does not exist") }
            return try YAMLParser.parseFile(atPath: path)
        }
        guard let root = parsed else { return [] }
        return try await withGate {
            guard case .mapping(let entries, _) = root else {
                throw BerthError.invalidConfig("\(root.mark): expected a mapping of plugin sections, got \(root.kindName)")
            }
            var plans: [(any BerthPlugin, ConfigNode)] = []
            for entry in entries {
                guard let plugin = activePlugin(entry.key) else {
                    let active = withState { $0.records }.filter(\.isActive).map(\.id).joined(separator: ", ")
                    throw BerthError.invalidConfig(
                        "\(entry.keyMark): \(entry.key): no active plugin \"\(entry.key)\" to import into (active: \(active.isEmpty ? "none" : active))")
                }
                plans.append((plugin, entry.value))
            }
            var changes: [ConfigChange] = []
            for (plugin, section) in plans { changes += try await plugin.planImport(section, replace: replace) }
            if dryRun { return changes }
            changes = []
            for (plugin, section) in plans { changes += try await plugin.applyImport(section, replace: replace) }
            return changes
        }
    }

    func exportConfig() async -> String {
        var sections: [(String, ConfigNode)] = []
        for record in withState({ $0.records }) where record.isActive {
            if let section = await record.plugin?.exportConfig() { sections.append((record.id, section)) }
        }
        if sections.isEmpty { return "{}\n" }
        return ConfigNode.map(sections).yamlText()
    }
}
