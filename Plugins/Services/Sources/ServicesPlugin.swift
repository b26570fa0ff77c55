import BerthKit
import Synchronization

/// The services plugin (PyroLab absorbed): named services from config and `Define`, supervised by BerthKit's
/// `Supervisor`, looked up by name on the bus. See README.md.
final class ServicesPlugin: BerthPlugin, ServiceDefining, ServiceCodeDeploying {
    let id = "services"
    let version = "1.0.0"
    private let state = Mutex<ServiceRegistry?>(nil)

    private var registry: ServiceRegistry {
        get throws {
            guard let registry = state.withLock({ $0 }) else {
                throw BerthError.failed("the services plugin is not running")
            }
            return registry
        }
    }

    func validate(config: ConfigNode?) throws {
        let registry = state.withLock { $0 }
        let parsed = try ServicesConfig.parse(config, logDirectory: "/", defined: registry?.definedNames ?? [])
        if let registry {
            try ServiceGraph.check(registry.effective(config: parsed, defined: registry.definedEntries))
        } else {
            try ServiceGraph.check(Dictionary(parsed.units.map { ($0.name, $0) }, uniquingKeysWith: { _, last in last }))
        }
    }

    func start(context: PluginContext) async throws {
        let store = try DefinedStore(stateDirectory: context.stateDirectory)
        // Kills the groups a killed daemon left (see Supervisor): no supervised child is ever adopted.
        let supervisor = try Supervisor(runtimeDirectory: context.runtimeDirectory, logger: context.logger)
        let registry = ServiceRegistry(context: context, supervisor: supervisor, store: store)
        let object = try await context.export(
            path: context.objectRoot, interfaces: [ServicesInterface.services(registry)])
        registry.attach(servicesObject: object)
        registry.startProcessRefresher()
        state.withLock { $0 = registry }
        let defined = Set(store.loadAll(logger: context.logger).map(\.0.name))
        let config = try ServicesConfig.parse(context.config, logDirectory: store.logDirectory, defined: defined)
        try await registry.changes.withLock { try await registry.load(config: config) }
    }

    func reload(config: ConfigNode?) async throws {
        let registry = try registry
        try await registry.changes.withLock {
            let parsed = try ServicesConfig.parse(
                config, logDirectory: registry.logDirectory, defined: registry.definedNames)
            try await registry.apply(config: parsed, startAutolaunch: false)
        }
    }

    func stop() async {
        guard
            let registry = state.withLock({ s in
                defer { s = nil }; return s
            })
        else { return }
        await registry.shutdown()
    }

    func reopenLogs() async {
        guard let registry = state.withLock({ $0 }) else { return }
        for unit in registry.sortedUnits {
            do { try unit.process.reopenLogs() } catch {
                registry.context.logger.error("service \"\(unit.name)\": cannot reopen its log: \(error)")
            }
        }
    }

    // MARK: - ServiceDefining (pickup)

    func defineService(name: String, specYAML: String, source: String) async throws {
        try await registry.define(name: name, yaml: specYAML, source: source)
    }

    func removeService(name: String) async throws {
        try await registry.remove(name: name, sender: nil)
    }

    // MARK: - ServiceCodeDeploying (pickup's service:NAME target)

    func deployServiceCode(service: String, files: [(name: String, contentPath: String)], source: String)
        async throws -> String
    {
        try await registry.deployCode(service: service, files: files)
    }

    // MARK: - Import/export (kind "service")

    func exportConfig() async -> ConfigNode? {
        guard let registry = state.withLock({ $0 }) else { return nil }
        return ServicesConfig.node(
            autolaunch: registry.config.autolaunch, units: registry.sortedUnits.map(\.definition))
    }

    func planImport(_ section: ConfigNode, replace: Bool) async throws -> [ConfigChange] {
        let registry = try registry
        let incoming = try ServicesConfig.parse(
            section, logDirectory: registry.logDirectory, defined: Set(registry.sortedUnits.map(\.name)))
        let current = Dictionary(registry.sortedUnits.map { ($0.name, $0.definition) }, uniquingKeysWith: { a, _ in a })
        var changes = incoming.units.map { definition in
            let action: ConfigChange.Action =
                current[definition.name] == nil
                ? .create : current[definition.name] == definition ? .unchanged : .update
            return ConfigChange(kind: "service", name: definition.name, action: action)
        }
        if replace {
            let names = Set(incoming.units.map(\.name))
            changes += registry.definedNames.sorted().filter { !names.contains($0) }.map {
                ConfigChange(kind: "service", name: $0, action: .delete)
            }
        }
        // after/requires across the whole result (what stays, what comes): unknown names and cycles refuse it.
        try ServiceGraph.check(Self.afterImport(current: current, incoming: incoming, changes: changes))
        return changes
    }

    /// The definitions an import leaves: the current ones, the imported ones over them, without the deleted.
    static func afterImport(
        current: [String: ServiceDefinition], incoming: ServicesConfig, changes: [ConfigChange]
    ) -> [String: ServiceDefinition] {
        var result = current
        for definition in incoming.units { result[definition.name] = definition }
        for change in changes where change.action == .delete { result.removeValue(forKey: change.name) }
        return result
    }

    /// Imported units become run-time definitions (persisted like `Define`); with `replace`, run-time definitions
    /// not in the file are removed. The file's `autolaunch` names are started.
    func applyImport(_ section: ConfigNode, replace: Bool) async throws -> [ConfigChange] {
        let registry = try registry
        let changes = try await planImport(section, replace: replace)
        let incoming = try ServicesConfig.parse(
            section, logDirectory: registry.logDirectory, defined: Set(registry.sortedUnits.map(\.name)))
        // Defined in dependency order (what a unit waits for first), so each definition finds its after/requires.
        let current = Dictionary(registry.sortedUnits.map { ($0.name, $0.definition) }, uniquingKeysWith: { a, _ in a })
        let depth = ServiceGraph.depths(Self.afterImport(current: current, incoming: incoming, changes: changes))
        let ordered = incoming.units.enumerated().sorted { a, b in
            let (da, db) = (depth[a.element.name] ?? 0, depth[b.element.name] ?? 0)
            return da != db ? da < db : a.offset < b.offset
        }.map(\.element)
        for definition in ordered {
            guard changes.contains(where: { $0.name == definition.name && $0.action != .unchanged }) else { continue }
            try await registry.define(name: definition.name, yaml: definition.node.yamlText(), source: "import")
        }
        for change in changes where change.action == .delete {
            try await registry.remove(name: change.name, sender: nil)
        }
        registry.launch(
            incoming.autolaunch.filter { name in
                (try? registry.unit(name)).map { $0.process.snapshot.state == .inactive } ?? false
            })
        return changes
    }
}

/// The plugin object for the entry symbols (Plugins/Services/Entry).
package func makeServicesPlugin() -> any BerthPlugin { ServicesPlugin() }
