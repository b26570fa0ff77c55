import BerthKit

/// org.berth.Berth1.Manager on /org/berth/Berth1: the daemon's own methods, properties and signals.
/// Each method is a thin adapter onto `Daemon`.
enum ManagerInterface {
    static let name = "org.berth.Berth1.Manager"
    static let path = "/org/berth/Berth1"

    static func make(daemon: Daemon, mode: PluginContext.Mode, configPath: String, pid: UInt32) -> BusInterface {
        BusInterface(
            name,
            methods: [
                .sync("Ping") { _ in [] },
                .sync("ListPlugins", out: [BusArg("plugins", "a(ssso)")]) { _ in
                    [.structs("(ssso)", daemon.pluginRows())]
                },
                .async("Reload") { _ in
                    try await daemon.reload()
                    return []
                },
                .async("RestartPlugin", in: [BusArg("id", "s")]) { call in
                    try await daemon.restartPlugin(id: call.string(0))
                    return []
                },
                .sync("Shutdown") { _ in
                    daemon.requestShutdown(reason: "Shutdown() called over D-Bus")
                    return []
                },
                .sync("ListJobs", out: [BusArg("jobs", "a(usso)")]) { _ in
                    [.structs("(usso)", daemon.jobs.running.map {
                        [.uint32($0.id), .string($0.plugin), .string($0.operation), .objectPath($0.path)]
                    })]
                },
                .sync("CancelJob", in: [BusArg("id", "u")]) { call in
                    let id = call.uint32(0)
                    guard let job = daemon.jobs.job(id: id) else {
                        throw BerthError.notFound("job \(id) does not exist (or has already ended)")
                    }
                    job.cancel()
                    return []
                },
                .async(
                    "ImportConfig", in: [BusArg("path", "s"), BusArg("replace", "b"), BusArg("dry_run", "b")],
                    out: [BusArg("changes", "a(sss)")]
                ) { call in
                    let changes = try await daemon.importConfig(
                        path: call.string(0), replace: call.bool(1), dryRun: call.bool(2))
                    return [.structs("(sss)", changes.map { [.string($0.kind), .string($0.name), .string($0.action.rawValue)] })]
                },
                .async("ExportConfig", out: [BusArg("yaml", "s")]) { _ in
                    [.string(await daemon.exportConfig())]
                },
            ],
            properties: [
                BusProperty("Version", "s", initial: .string(BerthVersion.string), change: .const),
                BusProperty("ApiVersion", "u", initial: .uint32(BerthVersion.api), change: .const),
                BusProperty("State", "s", initial: .string("starting")),
                BusProperty("Mode", "s", initial: .string(mode.rawValue), change: .const),
                BusProperty("DaemonPID", "u", initial: .uint32(pid), change: .const),
                BusProperty("ConfigPath", "s", initial: .string(configPath), change: .const),
                BusProperty("Plugins", "ao", initial: .objectPaths([])),
                BusProperty("Jobs", "ao", initial: .objectPaths([])),
            ],
            signals: [
                BusSignal(
                    "JobNew", [BusArg("id", "u"), BusArg("job", "o"), BusArg("plugin", "s"), BusArg("operation", "s")]),
                BusSignal(
                    "JobRemoved", [BusArg("id", "u"), BusArg("job", "o"), BusArg("plugin", "s"), BusArg("result", "s")]),
            ])
    }
}
