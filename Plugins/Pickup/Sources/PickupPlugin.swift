import BerthKit
import Synchronization

// The pickup plugin (Zato hot-deployment): folders watched with inotify deploy what lands in them to services,
// config, files or instances/<app>; see README.md.

// The id-suffixed symbol names (see berthd's PluginLoader) keep this library linkable beside other plugins in the
// one test binary.
final class PickupPlugin: BerthPlugin {
    let id = "pickup"
    let version = "1.0.0"
    /// services and instances are targets: they start first when present (and stop after pickup).
    let dependencies = ["services", "instances"]
    private let service = Mutex<PickupService?>(nil)

    func validate(config: ConfigNode?) throws { _ = try PickupConfig.parse(config) }

    func start(context: PluginContext) async throws {
        let config = try PickupConfig.parse(context.config)
        let targets = DeployTargets(
            peer: { context.peer($0) },
            importConfig: { path in _ = try await context.importConfig(path: path, replace: false, dryRun: false) })
        let service = try PickupService(
            stateDirectory: context.stateDirectory, config: config, targets: targets, logger: context.logger)
        let object = try await context.export(
            path: context.objectRoot, interfaces: [PickupInterface.make(service, logger: context.logger)])
        await service.attach(object)
        try await service.start(config: config)
        self.service.withLock { $0 = service }
        context.logger.info(
            "pickup watches \(service.watcher.directories.count) folders under \(context.stateDirectory)")
    }

    func reload(config: ConfigNode?) async throws {
        let parsed = try PickupConfig.parse(config)
        await service.withLock { $0 }?.reload(parsed)
    }

    func stop() async {
        let running = service.withLock { s -> PickupService? in
            defer { s = nil }
            return s
        }
        await running?.stop()
    }
}

/// The plugin object for the entry symbols (Plugins/Pickup/Entry).
package func makePickupPlugin() -> any BerthPlugin { PickupPlugin() }
