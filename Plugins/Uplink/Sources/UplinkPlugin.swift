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

    func validate(config: ConfigNode?) throws { _ = try UplinkConfig.parse(config) }

    func start(context: PluginContext) async throws {
        let config = try UplinkConfig.parse(context.config)
        let service = try await OSThread.run(name: "uplink-open") {
            try UplinkService(stateDirectory: context.stateDirectory, config: config, logger: context.logger)
        }
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
        try service.reload(parsed)
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

    /// The `uplink:` section as it runs, without the credentials files.
    func exportConfig() async -> ConfigNode? { running.withLock { $0?.service.config.node() } }

    /// What ExportConfig wrote imports back as unchanged (credentials files aside); anything else is refused:
    /// destinations belong in the config file, with their credentials files beside it.
    func planImport(_ section: ConfigNode, replace: Bool) async throws -> [ConfigChange] {
        guard let current = running.withLock({ $0?.service.config }) else {
            throw BerthError(.pluginFailed, "the uplink plugin is not running")
        }
        var incoming = try UplinkConfig.parse(section)
        var compared = current
        compared.destinations = compared.destinations.map {
            var d = $0
            d.credentials = nil
            return d
        }
        incoming.destinations = incoming.destinations.map {
            var d = $0
            d.credentials = nil
            return d
        }
        guard incoming == compared else {
            throw BerthError.notSupported(
                "uplink destinations are set in the config file (the imported section at \(section.mark) differs); "
                    + "change them there and reload")
        }
        return incoming.destinations.map { ConfigChange(kind: "uplink-destination", name: $0.name, action: .unchanged) }
    }

    func applyImport(_ section: ConfigNode, replace: Bool) async throws -> [ConfigChange] {
        try await planImport(section, replace: replace)
    }
}

/// The plugin object for the entry symbols (Plugins/Uplink/Entry).
package func makeUplinkPlugin() -> any BerthPlugin { UplinkPlugin() }
