import BerthKit
import Synchronization

/// The services the plugin runs: config-file definitions merged with run-time ones (a run-time definition of the
/// same name overrides the file's until it is removed). Changes (define, remove, reload, import) are serialized by
/// `changes`; lookups read `units` under its mutex.
final class ServiceRegistry: Sendable {
    let context: PluginContext
    let supervisor: Supervisor
    let store: DefinedStore
    let changes = AsyncLock()
    private let state = Mutex<State>(State())

    struct State {
        var units: [String: ServiceUnit] = [:]
        var config = ServicesConfig()
        /// Run-time definitions and the YAML they came from.
        var defined: [String: (ServiceDefinition, String)] = [:]
        var servicesObject: BusObject?
        /// Starts in progress through `start(_:)` (by hand, autolaunch, a dependent): a second start of the same
        /// service joins the first, and `after` waits for them.
        var starting: [String: (id: UInt64, task: Task<Void, any Error>)] = [:]
        var nextStartID: UInt64 = 0
        /// Services being stopped or restarted on purpose: their reaching `inactive` does not stop their requirers
        /// again (the operation already did, in order).
        var operating: [String: Int] = [:]
        /// The desired state: services started by hand (Start, Restart, a dependent's start) and not stopped by
        /// hand since. Recorded on disk; started again at the next daemon start.
        var wanted: Set<String> = []
        var refresher: Task<Void, Never>?
        var codeLocks: [String: AsyncLock] = [:]
        var refreshContinuation: AsyncStream<Void>.Continuation?
    }

    init(context: PluginContext, supervisor: Supervisor, store: DefinedStore) {
        self.context = context
        self.supervisor = supervisor
        self.store = store
    }

    var logDirectory: String { store.logDirectory }
    var config: ServicesConfig { state.withLock { $0.config } }
    var definedNames: Set<String> { state.withLock { Set($0.defined.keys) } }
    var definedEntries: [String: (ServiceDefinition, String)] { state.withLock { $0.defined } }
    var sortedUnits: [ServiceUnit] { state.withLock { $0.units.values.sorted { $0.name < $1.name } } }

    func attach(servicesObject: BusObject) { state.withLock { $0.servicesObject = servicesObject } }

    /// The unit called `name`, or `NotFound`.
    func unit(_ name: String) throws -> ServiceUnit {
        guard let unit = state.withLock({ $0.units[name] }) else {
            throw BerthError.notFound("there is no service \"\(name)\"")
        }
        return unit
    }

    /// The effective definitions: the file's, overridden by run-time ones.
    func effective(config: ServicesConfig, defined: [String: (ServiceDefinition, String)]) -> [String:
        ServiceDefinition]
    {
        var result = Dictionary(config.units.map { ($0.name, $0) }, uniquingKeysWith: { _, last in last })
        for (name, entry) in defined { result[name] = entry.0 }
        return result
    }

    /// The effective definitions now.
    var definitions: [String: ServiceDefinition] {
        state.withLock { s in s.units.mapValues(\.definition) }
    }

    /// Loads stored definitions and the desired state, applies `config`, and starts the autolaunch list and the
    /// services that were running by hand when the previous daemon stopped (without waiting for readiness).
    func load(config: ServicesConfig) async throws {
        let stored = store.loadAll(logger: context.logger)
        let wanted = store.loadWanted()
        state.withLock { s in
            for (definition, yaml) in stored { s.defined[definition.name] = (definition, yaml) }
            s.wanted = wanted
        }
        try await apply(config: config, startAutolaunch: true, alsoStart: wanted)
        let names = Set(sortedUnits.map(\.name))
        let store = self.store
        let logger = context.logger
        // Names of services that no longer exist leave the record (one defined again later does not start by
        // itself).
        let kept = state.withLock { s in
            s.wanted.formIntersection(names)
            return s.wanted
        }
        if kept != wanted { try? await OSThread.run(name: "berth-svc-store") { try store.saveWanted(kept) } }
        // Logs of services that no longer exist, untouched for a week, are aged out.
        try? await OSThread.run(name: "berth-svc-logs") { store.ageOutLogs(keeping: names, logger: logger) }
    }

    /// Brings the running set in line with `config` and the run-time definitions: removed services are stopped and
    /// their objects removed, changed ones are restarted with the new definition (if they were running or are in
    /// autolaunch), new ones are exported, autolaunch entries that are not running are started. Unchanged services
    /// are not touched.
    func apply(config: ServicesConfig, startAutolaunch: Bool, alsoStart: Set<String> = []) async throws {
        let (current, defined, previous) = state.withLock { s in (s.units, s.defined, s.config.autolaunch) }
        let wanted = effective(config: config, defined: defined)
        // Unknown names and cycles in after/requires: nothing changes.
        try ServiceGraph.check(wanted)
        state.withLock { $0.config = config }
        // At start every autolaunch entry starts; on reload only the entries new to the list.
        let launchNames = Set(startAutolaunch ? config.autolaunch : config.autolaunch.filter { !previous.contains($0) })
            .union(alsoStart)
        // Removed services stop in reverse order (those that wait for others first).
        let removed = current.keys.filter { wanted[$0] == nil }
        let all = current.mapValues(\.definition)
        for level in ServiceGraph.stopLevels(removed, all) {
            await withTaskGroup(of: Void.self) { group in
                for name in level { group.addTask { await self.stop(name, recordWanted: false) } }
            }
            for name in level {
                guard let unit = current[name] else { continue }
                await unit.shutdown()
                unit.object.remove()
                state.withLock { s in
                    s.units.removeValue(forKey: name)
                    s.wanted.remove(name)
                }
            }
        }
        if !removed.isEmpty {
            let store = self.store
            let names = removed
            let wantedNow = state.withLock { $0.wanted }
            try? await OSThread.run(name: "berth-svc-store") {
                for name in names { store.deleteLogs(name) }
                try store.saveWanted(wantedNow)
            }
        }
        var toStart: [String] = []
        for name in wanted.keys.sorted() {
            let definition = wanted[name]!
            if let unit = current[name] {
                if unit.definition != definition {
                    let wasRunning = [.active, .activating].contains(unit.process.snapshot.state)
                    // As a restart: what requires it stops first and starts again after it (in order).
                    let requirers = ServiceGraph.requirers(of: name, in: current.mapValues(\.definition)).filter {
                        [.active, .activating].contains(current[$0]?.process.snapshot.state)
                    }
                    beginOperation(name)
                    await stop(name, recordWanted: false)
                    await unit.replace(definition: definition, process: makeProcess(definition))
                    endOperation(name)
                    if wasRunning || launchNames.contains(name) { toStart.append(name) }
                    if wasRunning { toStart += requirers.filter { !toStart.contains($0) } }
                } else if launchNames.contains(name) && unit.process.snapshot.state == .inactive {
                    toStart.append(name)
                }
            } else {
                _ = try await export(definition)
                if launchNames.contains(name) { toStart.append(name) }
            }
        }
        publishAutolaunch()
        launch(toStart)
    }

    /// Starts services in the background, each after what it waits for; a failure is in its State/LastError and
    /// the log.
    func launch(_ names: [String]) {
        let logger = context.logger
        let tasks = beginStarts(names)
        for (name, task) in tasks {
            Task {
                do { try await task.value } catch {
                    logger.error("service \"\(name)\" did not start: \(BerthError.wrapping(error).message)")
                }
            }
        }
    }

    // MARK: - Ordered start and stop

    /// Starts `name` once everything it waits for is ready, and returns when it is ready: its `requires` are
    /// started (and must become ready, else it does not start and this throws naming the failed requirement),
    /// its `after` services are waited for when they are being started. A start already in progress is joined.
    /// Cancelling the caller (a canceled Start job) cancels the start: a service still coming up is stopped.
    func start(_ name: String) async throws {
        guard let task = beginStarts([name])[name] else { throw BerthError.notFound("there is no service \"\(name)\"") }
        try await withTaskCancellationHandler { try await task.value } onCancel: { task.cancel() }
    }

    /// Registers the start tasks of `names` under one lock, so that services started together find each other's
    /// starts (`after` waits for them whatever order the tasks run in).
    private func beginStarts(_ names: [String]) -> [String: Task<Void, any Error>] {
        state.withLock { s in
            var result: [String: Task<Void, any Error>] = [:]
            for name in names {
                if let running = s.starting[name] {
                    result[name] = running.task
                    continue
                }
                guard let unit = s.units[name] else { continue }
                s.nextStartID += 1
                let id = s.nextStartID
                let task = Task { [self] in
                    defer {
                        state.withLock { s in
                            if s.starting[name]?.id == id { s.starting.removeValue(forKey: name) }
                        }
                    }
                    try await performStart(unit)
                }
                s.starting[name] = (id, task)
                result[name] = task
            }
            return result
        }
    }

    private func performStart(_ unit: ServiceUnit) async throws {
        let definition = unit.definition
        if !definition.dependencies.isEmpty {
            unit.setWaiting(definition.dependencies)
            defer { unit.setWaiting([]) }
            // Requirements are started (joined if already starting) and must be ready.
            let required = beginStarts(definition.requires)
            for name in definition.requires {
                do {
                    guard let task = required[name] else {
                        throw BerthError.notFound("there is no service \"\(name)\"")
                    }
                    try await task.value
                } catch is CancellationError {
                    throw CancellationError()
                } catch {
                    let reason = BerthError.wrapping(error).message
                    throw BerthError.failed(
                        "service \"\(unit.name)\" was not started: it requires \"\(name)\", which did not start (\(reason))")
                }
                unit.setWaiting(unit.waitingFor.filter { $0 != name })
            }
            // Order only: wait for the `after` services that are being started, whatever their outcome.
            for name in definition.after {
                if let task = state.withLock({ $0.starting[name]?.task }) { _ = try? await task.value }
                unit.setWaiting(unit.waitingFor.filter { $0 != name })
            }
        }
        try Task.checkCancellation()
        try await unit.process.start()
    }

    /// Stops `name` after the services that require it (they stop first, in reverse order), and records that it
    /// is no longer wanted (unless `recordWanted` is false: a shutdown, a removal).
    func stop(_ name: String, recordWanted: Bool = true) async {
        let (unit, definitions) = state.withLock { s in (s.units[name], s.units.mapValues(\.definition)) }
        guard let unit else { return }
        if recordWanted { await setWanted(name, false) }
        beginOperation(name)
        defer { endOperation(name) }
        // Requirers that run stop first, each after its own requirers.
        let requirers = ServiceGraph.requirers(of: name, in: definitions).filter { other in
            (try? self.unit(other)).map { $0.process.snapshot.state != .inactive } ?? false
        }
        await withTaskGroup(of: Void.self) { group in
            for other in requirers { group.addTask { await self.stop(other, recordWanted: false) } }
        }
        await unit.process.stop()
    }

    /// Restarts `name`: the services that require it stop first and start again after it is ready.
    func restart(_ name: String) async throws {
        let definitions = definitions
        let running = ServiceGraph.requirers(of: name, in: definitions).filter { other in
            (try? self.unit(other)).map { [.active, .activating].contains($0.process.snapshot.state) } ?? false
        }
        beginOperation(name)
        defer { endOperation(name) }
        await stop(name, recordWanted: false)
        await setWanted(name, true)
        try await start(name)
        for other in running { try await start(other) }
    }

    /// Records that `name` was started by hand (wanted) or stopped by hand (not wanted); the next daemon start
    /// starts the wanted ones again.
    func setWanted(_ name: String, _ wanted: Bool) async {
        let changed = state.withLock { s -> Set<String>? in
            let changed = wanted ? s.wanted.insert(name).inserted : s.wanted.remove(name) != nil
            return changed ? s.wanted : nil
        }
        guard let names = changed else { return }
        let store = self.store
        do {
            try await OSThread.run(name: "berth-svc-store") { try store.saveWanted(names) }
        } catch {
            context.logger.error("cannot record the running services: \(BerthError.wrapping(error).message)")
        }
    }

    private func beginOperation(_ name: String) { state.withLock { $0.operating[name, default: 0] += 1 } }
    private func endOperation(_ name: String) {
        state.withLock { s in
            s.operating[name, default: 1] -= 1
            if s.operating[name] == 0 { s.operating.removeValue(forKey: name) }
        }
    }

    /// A service reached `inactive` or `failed` on its own (it exited, hit its start limit): the services that
    /// require it stop too. Not after a stop by hand, which already stopped them first.
    func ended(_ name: String) {
        let (busy, definitions, unit) = state.withLock { s in
            (s.operating[name] != nil, s.units.mapValues(\.definition), s.units[name])
        }
        // Not during a stop or restart by hand, nor when it already runs again.
        guard !busy, let state = unit?.process.snapshot.state, state == .inactive || state == .failed else { return }
        let requirers = ServiceGraph.requirers(of: name, in: definitions)
        guard !requirers.isEmpty else { return }
        context.logger.notice("service \"\(name)\" stopped; stopping what requires it: \(requirers.joined(separator: ", "))")
        Task { for other in requirers { await self.stop(other, recordWanted: false) } }
    }

    /// The supervised process of a definition. A service without a `workdir` that has deployed code runs in its
    /// `current` release (see CodeReleases).
    func makeProcess(_ definition: ServiceDefinition) -> SupervisedProcess {
        var spec = definition.spec
        let code = codeReleases(definition.name).currentLink
        if spec.workingDirectory == nil && FileSystem.isDirectory(code) { spec.workingDirectory = code }
        return supervisor.process(spec)
    }

    /// The lock that makes code deployments to one service go one at a time.
    func codeLock(_ name: String) -> AsyncLock {
        state.withLock { s in
            if let lock = s.codeLocks[name] { return lock }
            let lock = AsyncLock()
            s.codeLocks[name] = lock
            return lock
        }
    }

    private func export(_ definition: ServiceDefinition) async throws -> ServiceUnit {
        let path = context.childPath(definition.name)
        let object = try await context.export(
            path: path, interfaces: [ServicesInterface.service(self, name: definition.name)])
        let unit = ServiceUnit(
            definition: definition, process: makeProcess(definition), object: object,
            ended: { [weak self] name in self?.ended(name) }, changed: { [weak self] in self?.refreshProcesses() })
        state.withLock { $0.units[definition.name] = unit }
        return unit
    }

    func publishAutolaunch() {
        let (object, names) = state.withLock { ($0.servicesObject, $0.config.autolaunch) }
        object?.set("Autolaunch", .array(element: "s", names.map(DBusValue.string)))
    }

    /// Defines or replaces a run-time service, persisted before it takes effect. A bad spec throws and leaves the
    /// previous definition running.
    func define(name: String, yaml: String, source: String) async throws {
        let definition = try ServiceDefinition.parse(name: name, yaml: yaml, source: source, logDirectory: logDirectory)
        try await changes.withLock {
            // after/requires must name defined services, without a cycle: checked before anything is stored.
            let (fileConfig, defined) = self.state.withLock { ($0.config, $0.defined) }
            var next = defined
            next[name] = (definition, yaml)
            try ServiceGraph.check(self.effective(config: fileConfig, defined: next))
            let store = self.store  // the write fsyncs: on a thread of its own, not the cooperative pool
            try await OSThread.run(name: "berth-svc-store") { try store.save(name, yaml: yaml) }
            let config = self.state.withLock { s in
                s.defined[name] = (definition, yaml)
                return s.config
            }
            try await self.apply(config: config, startAutolaunch: false)
        }
    }

    /// Removes a run-time definition (stopping the service, or going back to the file's definition of that name).
    func remove(name: String, sender: String?) async throws {
        let unit = try unit(name)
        if let sender { try unit.checkOwner(sender, "remove") }
        try await changes.withLock {
            guard self.state.withLock({ $0.defined[name] }) != nil else {
                throw BerthError.notSupported(
                    "service \"\(name)\" is defined in the config file; remove it there and reload")
            }
            // A service that others still require or wait for cannot go (their after/requires would dangle).
            let (fileConfig, defined) = self.state.withLock { ($0.config, $0.defined) }
            var next = defined
            next.removeValue(forKey: name)
            try ServiceGraph.check(self.effective(config: fileConfig, defined: next))
            let store = self.store
            try await OSThread.run(name: "berth-svc-store") { try store.delete(name) }
            let config = self.state.withLock { s in
                s.defined.removeValue(forKey: name)
                return s.config
            }
            try await self.apply(config: config, startAutolaunch: false)
        }
    }

    // MARK: - Processes

    /// Asks for a refresh of every unit's `Processes` (coalesced: one scan of /proc serves every request made
    /// while it runs).
    func refreshProcesses() { _ = state.withLock({ $0.refreshContinuation })?.yield() }

    /// Refreshes `Processes` on request (every state change) and once a second while something runs: one scan of
    /// /proc for all services, off the cooperative pool.
    func startProcessRefresher() {
        let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let task = Task { [weak self] in
            let ticker = Task { [weak self] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(1))
                    self?.refreshProcesses()
                }
            }
            defer { ticker.cancel() }
            for await _ in stream {
                guard let self else { break }
                await self.refreshProcessesNow()
            }
        }
        state.withLock { s in
            s.refresher = task
            s.refreshContinuation = continuation
        }
    }

    private func refreshProcessesNow() async {
        let units = sortedUnits
        let supervisor = self.supervisor
        let anyRunning = units.contains { [.activating, .active, .deactivating].contains($0.process.snapshot.state) }
        var map: [String: [UnitProcess]] = [:]
        if anyRunning {
            map = (try? await OSThread.run(name: "berth-svc-procs") { supervisor.processesByUnit() }) ?? [:]
        }
        for unit in units { unit.setProcesses(map[unit.name] ?? []) }
    }

    /// Stops every service in reverse order (those that wait for others first) and removes every object. The
    /// desired state on disk stays as it is: the next start starts the same services again.
    func shutdown() async {
        let units = state.withLock { s in
            defer { s.units = [:] }
            return s.units
        }
        for level in ServiceGraph.stopLevels(Array(units.keys), units.mapValues(\.definition)) {
            await withTaskGroup(of: Void.self) { group in
                for name in level { group.addTask { await units[name]?.shutdown() } }
            }
        }
        let unitList = Array(units.values)
        for unit in unitList { unit.object.remove() }
        state.withLock { $0.servicesObject }?.remove()
        let (refresher, continuation) = state.withLock { s in
            defer {
                s.refresher = nil
                s.refreshContinuation = nil
            }
            return (s.refresher, s.refreshContinuation)
        }
        continuation?.finish()
        refresher?.cancel()
    }
}
