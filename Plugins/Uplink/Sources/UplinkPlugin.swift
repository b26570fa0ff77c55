import BerthKit
import Synchronization

// The uplink plugin (acoupi's "connected" program, for every plugin): berth's events as JSON messages in a durable
// SQLite outbox, delivered at least once, in order, to MQTT brokers and HTTP endpoints; see README.md.

final class UplinkPlugin: BerthPlugin {
    let id = "uplink"
    let version = "1.0.0"
    private struct Running {
        var service: UplinkService
        var client: BusConnection
        var tasks: [Task<Void, Never>]
        var stateDirectory: String
    }
    private let running = Mutex<Running?>(nil)
    private let heartbeat = Mutex<Task<Void, Never>?>(nil)
    /// The two sources of the running section: the config file's and the imported destinations (state folder).
    private struct Sources: Sendable {
        var file = UplinkConfig()
        var imported: [DestinationConfig] = []
        var store = ImportedDestinations(stateDirectory: "")
    }
    /// Held while an import or a reload changes the running section, so that the two never interleave.
    private let sources = Mutex(Sources())

    func validate(config: ConfigNode?) throws { _ = try UplinkConfig.parse(config) }

    func start(context: PluginContext) async throws {
        let file = try UplinkConfig.parse(context.config)
        let store = ImportedDestinations(stateDirectory: context.stateDirectory)
        let (service, imported) = try await OSThread.run(name: "uplink-open") {
            let imported = store.load(defaultEvents: file.events, logger: context.logger)
            let config = UplinkConfig.merging(file: file, imported: imported)
            return (
                try UplinkService(stateDirectory: context.stateDirectory, config: config, logger: context.logger),
                imported
            )
        }
        let config = service.config
        for d in imported where file.destinations.contains(where: { $0.name == d.name }) {
            context.logger.info("uplink destination \"\(d.name)\" runs as imported, not as the config file sets it")
        }
        sources.withLock { $0 = Sources(file: file, imported: imported, store: store) }
        // Workers first: a credentials file that cannot be used fails the start before anything runs.
        try service.start()
        var opened: BusConnection?
        let client: BusConnection
        let router: Task<Void, Never>
        do {
            // A client of the bus like any other: berthd's signals reach uplink the way they reach a desktop tool.
            client = try BusConnection(context.connection.address, description: "uplink")
            opened = client
            let stream = try await client.signals(sender: "org.berth.Berth1")
            router = Task {
                for await signal in stream {
                    if let event = BusEvents.event(signal) { service.enqueue(event) }
                }
            }
            let object = try await context.export(
                path: context.objectRoot, interfaces: [UplinkInterface.make(service, context: context)])
            service.attach(object)
        } catch {
            opened?.close()
            await service.stop()
            throw error
        }
        running.withLock {
            $0 = Running(service: service, client: client, tasks: [router], stateDirectory: context.stateDirectory)
        }
        restartHeartbeat(config.heartbeat)
        context.logger.info(
            "uplink sends to \(config.destinations.count) destinations; \(service.outbox.pending) messages pending")
    }

    private func restartHeartbeat(_ interval: Duration) {
        guard let r = running.withLock({ $0 }) else { return }
        let task: Task<Void, Never>? =
            interval == .zero
            ? nil
            : Task { [service = r.service, client = r.client, dir = r.stateDirectory] in
                // The first beat one interval after start: by then berthd owns its name and every plugin has started
                // (the retained `online` status says at once that the host is up).
                while !Task.isCancelled {
                    try? await Task.sleep(for: interval)
                    if Task.isCancelled { break }
                    service.enqueue(await Heartbeat.compute(client: client, service: service, stateDirectory: dir))
                }
            }
        heartbeat.withLock {
            $0?.cancel()
            $0 = task
        }
    }

    func reload(config: ConfigNode?) async throws {
        let parsed = try UplinkConfig.parse(config)
        guard let service = running.withLock({ $0?.service }) else { return }
        let before = service.config.heartbeat
        try await OSThread.run(name: "uplink-reload") { [self] in
            try sources.withLock { s in
                try service.reload(UplinkConfig.merging(file: parsed, imported: s.imported))
                s.file = parsed
            }
        }
        if parsed.heartbeat != before { restartHeartbeat(parsed.heartbeat) }
        service.publish()
    }

    func stop() async {
        heartbeat.withLock {
            $0?.cancel()
            $0 = nil
        }
        guard
            let r = running.withLock({ s -> Running? in
                defer { s = nil }; return s
            })
        else { return }
        for task in r.tasks { task.cancel() }
        r.client.close()
        await r.service.stop()
    }

    /// The `uplink:` section as it runs (the config file's with the imported destinations), without the
    /// credentials files.
    func exportConfig() async -> ConfigNode? { running.withLock { $0?.service.config.node() } }

    /// What an import of `section` would change, per destination (kind `uplink-destination`); changes nothing.
    func planImport(_ section: ConfigNode, replace: Bool) async throws -> [ConfigChange] {
        let service = try runningService()
        return try await OSThread.run(name: "uplink-plan") { [self] in
            try sources.withLock { try Self.plan(section, replace: replace, service: service, sources: $0).changes }
        }
    }

    /// Applies the import, all or nothing: the new set of imported destinations is stored atomically, then the
    /// running service changes what changed (the reload path); if the service refuses it, the stored set is put
    /// back and nothing changed.
    func applyImport(_ section: ConfigNode, replace: Bool) async throws -> [ConfigChange] {
        let service = try runningService()
        let changes = try await OSThread.run(name: "uplink-import") { [self] in
            try sources.withLock { s -> [ConfigChange] in
                let plan = try Self.plan(section, replace: replace, service: service, sources: s)
                guard plan.changes.contains(where: { $0.action != .unchanged }) else { return plan.changes }
                try s.store.save(plan.imported)
                do {
                    try service.reload(plan.merged)
                } catch {
                    do { try s.store.save(s.imported) } catch {
                        service.logger.error("uplink: the imported destinations cannot be put back: \(error)")
                    }
                    throw error
                }
                s.imported = plan.imported
                return plan.changes
            }
        }
        service.publish()
        return changes
    }

    private func runningService() throws -> UplinkService {
        guard let service = running.withLock({ $0?.service }) else {
            throw BerthError(.pluginFailed, "the uplink plugin is not running")
        }
        return service
    }

    /// The section-level keys an import may only repeat (they belong to the config file).
    private static let fileOnlyKeys = [
        "host", "heartbeat", "retry_initial", "retry_max", "max_pending", "max_pending_bytes", "events",
    ]

    private static func plan(_ section: ConfigNode, replace: Bool, service: UplinkService, sources: Sources) throws
        -> (imported: [DestinationConfig], merged: UplinkConfig, changes: [ConfigChange])
    {
        let incoming = try UplinkConfig.parse(section, defaults: sources.file)
        if case .mapping(let entries, _) = section {
            var compared = incoming
            compared.destinations = sources.file.destinations
            for entry in entries where fileOnlyKeys.contains(entry.key) {
                var one = sources.file
                switch entry.key {
                case "host": one.host = compared.host
                case "heartbeat": one.heartbeat = compared.heartbeat
                case "retry_initial": one.retryInitial = compared.retryInitial
                case "retry_max": one.retryMax = compared.retryMax
                case "max_pending": one.maxPending = compared.maxPending
                case "max_pending_bytes": one.maxPendingBytes = compared.maxPendingBytes
                default: one.events = compared.events
                }
                guard one == sources.file else {
                    throw BerthError.invalidConfig(
                        at: entry.keyMark, path: "uplink." + entry.key,
                        "is set in the config file (an import may only repeat it); an import changes destinations")
                }
            }
        }
        let current = service.config
        let running = Dictionary(current.destinations.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let inFile = Dictionary(sources.file.destinations.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var next: [String: DestinationConfig] =
            replace ? [:] : Dictionary(sources.imported.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for var d in incoming.destinations {
            // No credentials file named: the running destination's stays (ExportConfig never writes it).
            if d.credentials == nil { d.credentials = running[d.name]?.credentials }
            // The config file's own settings need no record: the file stays authoritative for them.
            next[d.name] = inFile[d.name] == d ? nil : d
        }
        let imported = next.values.sorted { $0.name < $1.name }
        let merged = UplinkConfig.merging(file: sources.file, imported: imported)
        let after = Dictionary(merged.destinations.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var changes: [ConfigChange] = []
        var seen = Set<String>()
        for name in current.destinations.map(\.name) + merged.destinations.map(\.name) where seen.insert(name).inserted
        {
            let action: ConfigChange.Action
            switch (running[name], after[name]) {
            case (nil, _): action = .create
            case (_, nil): action = .delete
            case (let a?, let b?): action = a == b ? .unchanged : .update
            }
            changes.append(ConfigChange(kind: "uplink-destination", name: name, action: action))
        }
        // A credentials file named for a new or changed destination must pass the checks berth.yaml's do, now.
        for change in changes where change.action == .create || change.action == .update {
            guard let d = after[change.name], let file = d.credentials else { continue }
            do {
                _ = try Credentials.load(file, destination: d.name)
            } catch let error as BerthError {
                let mark = section["destinations"]?[d.name]?.mark
                throw BerthError(error.code, mark.map { "\($0): \(error.message)" } ?? error.message)
            }
        }
        return (imported, merged, changes)
    }
}

/// The plugin object for the entry symbols (Plugins/Uplink/Entry).
package func makeUplinkPlugin() -> any BerthPlugin { UplinkPlugin() }
