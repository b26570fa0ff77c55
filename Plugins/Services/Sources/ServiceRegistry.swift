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
    }

    init(context: PluginContext, supervisor: Supervisor, store: DefinedStore) {
        self.context = context
        self.supervisor = supervisor
        self.store = store
    }

    var logDirectory: String { store.logDirectory }
    var config: ServicesConfig { state.withLock { $0.config } }
    var definedNames: Set<String> { state.withLock { Set($0.defined.keys) } }
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

    /// Loads stored definitions, applies `config`, and starts the autolaunch list (without waiting for readiness).
    func load(config: ServicesConfig) async throws {
        let stored = store.loadAll(logger: context.logger)
        state.withLock { s in for (definition, yaml) in stored { s.defined[definition.name] = (definition, yaml) } }
        try await apply(config: config, startAutolaunch: true)
    }

    /// Brings the running set in line with `config` and the run-time definitions: removed services are stopped and
    /// their objects removed, changed ones are restarted with the new definition (if they were running or are in
    /// autolaunch), new ones are exported, autolaunch entries that are not running are started. Unchanged services
    /// are not touched.
    func apply(config: ServicesConfig, startAutolaunch: Bool) async throws {
        let (current, defined, previous) = state.withLock { s in
            defer { s.config = config }
            return (s.units, s.defined, s.config.autolaunch)
        }
        // At start every autolaunch entry starts; on reload only the entries new to the list.
        let launchNames = Set(startAutolaunch ? config.autolaunch : config.autolaunch.filter { !previous.contains($0) })
        let wanted = effective(config: config, defined: defined)
        for (name, unit) in current where wanted[name] == nil {
            await unit.shutdown()
            unit.object.remove()
            _ = state.withLock { $0.units.removeValue(forKey: name) }
        }
        var toStart: [ServiceUnit] = []
        for name in wanted.keys.sorted() {
            let definition = wanted[name]!
            if let unit = current[name] {
                if unit.definition != definition {
                    let wasRunning = [.active, .activating].contains(unit.process.snapshot.state)
                    await unit.replace(definition: definition, process: makeProcess(definition))
                    if wasRunning || launchNames.contains(name) { toStart.append(unit) }
                } else if launchNames.contains(name) && unit.process.snapshot.state == .inactive {
                    toStart.append(unit)
                }
            } else {
                let unit = try await export(definition)
                if launchNames.contains(name) { toStart.append(unit) }
            }
        }
        publishAutolaunch()
        for unit in toStart { launch(unit) }
    }

    /// Starts a unit in the background; a failure is in its State/LastError and the log.
    func launch(_ unit: ServiceUnit) {
        let process = unit.process
        let logger = context.logger
        Task {
            do { try await process.start() } catch {
                logger.error("service \"\(unit.name)\" did not start: \(BerthError.wrapping(error).message)")
            }
        }
    }

    func makeProcess(_ definition: ServiceDefinition) -> SupervisedProcess {
        supervisor.process(definition.spec)
    }

    private func export(_ definition: ServiceDefinition) async throws -> ServiceUnit {
        let path = context.childPath(definition.name)
        let object = try await context.export(
            path: path, interfaces: [ServicesInterface.service(self, name: definition.name)])
        let unit = ServiceUnit(definition: definition, process: makeProcess(definition), object: object)
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
            let store = self.store
            try await OSThread.run(name: "berth-svc-store") { try store.delete(name) }
            let config = self.state.withLock { s in
                s.defined.removeValue(forKey: name)
                return s.config
            }
            try await self.apply(config: config, startAutolaunch: false)
        }
    }

    /// Stops every service and removes every object.
    func shutdown() async {
        let units = state.withLock { s in
            defer { s.units = [:] }
            return Array(s.units.values)
        }
        await withTaskGroup(of: Void.self) { group in
            for unit in units { group.addTask { await unit.shutdown() } }
        }
        for unit in units { unit.object.remove() }
        state.withLock { $0.servicesObject }?.remove()
    }
}
