import BerthKit
import Synchronization

/// The recorder plugin (`recorder`): reads the `recorder:` section, exports `/org/berth/Berth1/recorder` and runs
/// one `RecorderEngine`. A reload with a changed section shuts the engine down (the file in progress is
/// finished; an active deployment stays active in the database) and starts a new one, which resumes it.
final class RecorderPlugin: BerthPlugin {
    let id = "recorder"
    let version = "1.0.0"

    private struct State {
        var context: PluginContext?
        var object: BusObject?
        var engine: RecorderEngine?
        var config: RecorderConfig?
    }
    private let state = Mutex(State())
    /// Serialises start, reload and stop.
    private let lifecycle = AsyncLock()

    func validate(config: ConfigNode?) throws {
        _ = try RecorderConfig.parse(config, defaultStorage: "/var/lib/berth/recorder")
    }

    func start(context: PluginContext) async throws {
        let config = try RecorderConfig.parse(context.config, defaultStorage: context.stateDirectory)
        try await lifecycle.withLock {
            let interface = RecorderInterface(plugin: self, context: context)
            let object = try await context.export(path: context.objectRoot, interfaces: [interface.busInterface])
            state.withLock {
                $0.context = context
                $0.object = object
            }
            do { try await run(config, context: context) } catch {
                object.remove()
                throw error
            }
        }
    }

    func reload(config node: ConfigNode?) async throws {
        guard let context = state.withLock({ $0.context }) else { return }
        let config = try RecorderConfig.parse(node, defaultStorage: context.stateDirectory)
        try await lifecycle.withLock {
            let (old, current) = state.withLock { ($0.engine, $0.config) }
            guard config != current else { return }
            context.logger.notice("recorder: configuration changed; restarting the engine")
            await old?.shutdown()
            state.withLock { $0.engine = nil }
            try await run(config, context: context)
        }
    }

    func stop() async {
        await lifecycle.withLock {
            let (engine, object) = state.withLock { s in
                defer {
                    s.engine = nil
                    s.object = nil
                }
                return (s.engine, s.object)
            }
            await engine?.shutdown()
            object?.remove()
        }
    }

    /// The running engine, for the interface. `.failed` while none runs (between a reload's stop and start).
    func engine() throws -> RecorderEngine {
        guard let engine = state.withLock({ $0.engine }) else {
            throw BerthError.failed("the recorder engine is not running (the plugin is stopping or reloading)")
        }
        return engine
    }

    /// Builds an engine whose events reach the bus object, starts it and publishes its properties.
    private func run(_ config: RecorderConfig, context: PluginContext) async throws {
        guard let object = state.withLock({ $0.object }) else { return }
        let publisher = RecorderPublisher(object: object)
        // Processor runs keep their supervisor's pids file and their output in the runtime folder (a tmpfs under
        // systemd and XDG), not on the recordings' storage, which may be an SD card.
        let engine = RecorderEngine(
            config: config, logger: context.logger, events: publisher.events,
            runtimeDirectory: context.runtimeDirectory + "/processing",
            uplink: UplinkProbe(connection: context.connection, destination: "org.berth.Berth1"))
        publisher.attach(engine)
        try await engine.start()
        state.withLock {
            $0.engine = engine
            $0.config = config
        }
        publisher.publish()
    }
}

/// The plugin object for the entry symbols (Plugins/Recorder/Entry).
package func makeRecorderPlugin() -> any BerthPlugin { RecorderPlugin() }
