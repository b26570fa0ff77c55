import BerthKit
import Synchronization

// The instances plugin: sarge's app instances (`web-jCCbfV` with an executable `server`) on the shared supervisor,
// and rolling deployments behind a front end. See README.md in this folder.

@_cdecl("berth_plugin_abi_instances") public func berthPluginABI() -> UnsafePointer<CChar> { PluginABI.key }
@_cdecl("berth_plugin_entry_instances") public func berthPluginEntry() -> UnsafeMutableRawPointer {
    PluginABI.entry(InstancesPlugin())
}

final class InstancesPlugin: BerthPlugin, InstanceDeploying {
    let id = "instances"
    let version = "1.0.0"
    private let state = Mutex<(manager: InstanceManager?, interface: InstancesInterface?, object: BusObject?)>(
        (nil, nil, nil))

    func validate(config: ConfigNode?) throws { _ = try InstancesSettings.parse(config) }

    func start(context: PluginContext) async throws {
        let settings = try InstancesSettings.parse(context.config)
        let supervisor = try Supervisor(
            runtimeDirectory: context.runtimeDirectory, logger: context.logger)
        let manager = InstanceManager(
            store: InstanceStore(root: context.stateDirectory), supervisor: supervisor, settings: settings,
            logger: context.logger)
        let interface = InstancesInterface(manager: manager, context: context)
        await manager.setExporter { instance in
            try await context.export(
                path: context.childPath(instance.id), interfaces: [interface.instanceInterface(instance)])
        }
        try await manager.recover()
        let object = try await context.export(path: context.objectRoot, interfaces: [interface.root])
        state.withLock { $0 = (manager, interface, object) }
    }

    func reload(config: ConfigNode?) async throws {
        let settings = try InstancesSettings.parse(config)
        await state.withLock { $0.manager }?.apply(settings)
    }

    func stop() async {
        let (manager, object) = state.withLock { ($0.manager, $0.object) }
        object?.remove()
        await manager?.shutdown()
    }

    func reopenLogs() async {
        await state.withLock { $0.manager }?.reopenLogs()
    }

    /// Pickup's `instances/<app>` target: a rolling deploy of the bundle, as `Deploy` would start it.
    func deployBundle(application: String, source: String, options: [String: DBusValue]) async throws -> Job {
        guard let interface = state.withLock({ $0.interface }) else {
            throw BerthError(.pluginFailed, "the instances plugin is not running; cannot deploy \"\(source)\"")
        }
        return try await interface.deploy(application: application, source: source, options: options)
    }
}
