import BerthKit
import Synchronization

// A plugin for the core's tests: exports one object, starts jobs, reads a strict config section, reloads, and
// imports/exports items. Its section:
//   fixture: { greeting: "hello", fail_start: false, items: { a: "1" } }

@_cdecl("berth_plugin_abi") public func berthPluginABI() -> UnsafePointer<CChar> { PluginABI.key }
@_cdecl("berth_plugin_entry") public func berthPluginEntry() -> UnsafeMutableRawPointer {
    PluginABI.entry(FixturePlugin())
}

struct FixtureConfig: Equatable {
    var greeting = "hello"
    var failStart = false
    var items: [(String, String)] = []

    static func == (a: FixtureConfig, b: FixtureConfig) -> Bool {
        a.greeting == b.greeting && a.failStart == b.failStart && a.items.map(\.0) == b.items.map(\.0)
            && a.items.map(\.1) == b.items.map(\.1)
    }

    static func parse(_ node: ConfigNode?, path: String = "fixture") throws -> FixtureConfig {
        var config = FixtureConfig()
        guard let node else { return config }
        let reader = try ConfigReader(node, path: path)
        config.greeting = try reader.nonEmptyString("greeting") ?? config.greeting
        config.failStart = try reader.bool("fail_start") ?? false
        config.items = try reader.stringMap("items") ?? []
        try reader.finish()
        return config
    }
}

final class FixturePlugin: BerthPlugin {
    let id = "fixture"
    let version = "1.0.0"
    private let state = Mutex<(object: BusObject?, context: PluginContext?, items: [(String, String)], reloads: UInt32)>(
        (nil, nil, [], 0))

    func validate(config: ConfigNode?) throws { _ = try FixtureConfig.parse(config) }

    func start(context: PluginContext) async throws {
        let config = try FixtureConfig.parse(context.config)
        if config.failStart {
            throw BerthError.failed("fail_start is set in the fixture's section")
        }
        let object = try await context.export(path: context.objectRoot, interfaces: [interface(context)])
        object.set("Greeting", .string(config.greeting))
        state.withLock {
            $0.object = object
            $0.context = context
            $0.items = config.items
        }
        publishItems()
    }

    func reload(config: ConfigNode?) async throws {
        let parsed = try FixtureConfig.parse(config)
        let (object, reloads) = state.withLock { s -> (BusObject?, UInt32) in
            s.reloads += 1
            s.items = parsed.items
            return (s.object, s.reloads)
        }
        object?.set([("Greeting", .string(parsed.greeting)), ("ReloadCount", .uint32(reloads))])
        publishItems()
    }

    func stop() async {
        state.withLock { $0.object }?.remove()
    }

    func exportConfig() async -> ConfigNode? {
        let items = state.withLock { $0.items }
        return .map([("items", .map(items.map { ($0.0, .string($0.1)) }))])
    }

    func planImport(_ section: ConfigNode, replace: Bool) async throws -> [ConfigChange] {
        let incoming = try FixtureConfig.parse(section).items
        let current = Dictionary(state.withLock { $0.items }, uniquingKeysWith: { a, _ in a })
        var changes: [ConfigChange] = incoming.map { name, value in
            let action: ConfigChange.Action = current[name] == nil ? .create : current[name] == value ? .unchanged : .update
            return ConfigChange(kind: "item", name: name, action: action)
        }
        if replace {
            let names = Set(incoming.map(\.0))
            changes += current.keys.sorted().filter { !names.contains($0) }.map {
                ConfigChange(kind: "item", name: $0, action: .delete)
            }
        }
        return changes
    }

    func applyImport(_ section: ConfigNode, replace: Bool) async throws -> [ConfigChange] {
        let changes = try await planImport(section, replace: replace)
        let incoming = try FixtureConfig.parse(section).items
        state.withLock { s in
            var merged = replace ? [] : s.items.filter { item in !incoming.contains { $0.0 == item.0 } }
            merged += incoming
            s.items = merged.sorted { $0.0 < $1.0 }
        }
        publishItems()
        return changes
    }

    private func publishItems() {
        let (object, items) = state.withLock { ($0.object, $0.items) }
        object?.set("Items", .dictionary(key: "s", value: "s", items.map { DBusDictEntry(.string($0.0), .string($0.1)) }))
    }

    private func interface(_ context: PluginContext) -> BusInterface {
        BusInterface(
            "org.berth.Berth1.Fixture",
            methods: [
                .sync("Echo", in: [BusArg("value", "v")], out: [BusArg("value", "v")]) { call in call.arguments },
                .sync("SetCounter", in: [BusArg("value", "u")]) { [weak self] call in
                    self?.state.withLock { $0.object }?.set("Counter", .uint32(call.uint32(0)))
                    return []
                },
                .sync("Poke", in: [BusArg("count", "u")]) { [weak self] call in
                    guard let object = self?.state.withLock({ $0.object }) else { return [] }
                    for i in 0..<call.uint32(0) { object.emit("Poked", [.string("poke \(i)")]) }
                    return []
                },
                .async("PokeFromTasks", in: [BusArg("count", "u")]) { [weak self] call in
                    guard let object = self?.state.withLock({ $0.object }) else { return [] }
                    await withTaskGroup(of: Void.self) { group in
                        for i in 0..<call.uint32(0) { group.addTask { object.emit("Poked", [.string("poke \(i)")]) } }
                    }
                    return []
                },
                .sync("Fail", in: [BusArg("what", "s")]) { call in
                    throw BerthError.invalidArgument("fixture refuses \"\(call.string(0))\"")
                },
                .async("Sleep", in: [BusArg("seconds", "d")], out: [BusArg("job_id", "u"), BusArg("job", "o")]) { call in
                    let seconds = call.double(0)
                    guard seconds >= 0, seconds < 3600 else {
                        throw BerthError.invalidArgument("fixture cannot sleep \(seconds) s: give 0 to 3600")
                    }
                    let job = try await context.startJob("sleep") { job in
                        job.log("sleeping \(seconds) s")
                        job.progress(0.5)
                        try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
                        if seconds == 0.25 { throw BerthError.failed("a quarter second is the failing case") }
                    }
                    return job.reply
                },
            ],
            properties: [
                BusProperty("Greeting", "s", initial: .string("")),
                BusProperty("Counter", "u", initial: .uint32(0)),
                BusProperty("ReloadCount", "u", initial: .uint32(0)),
                BusProperty("Items", "a{ss}", initial: .dictionary(key: "s", value: "s", [])),
                BusProperty("Volume", "u", initial: .uint32(5)) { value, _ in
                    guard let v = value.uint32, v <= 10 else {
                        throw BerthError.invalidArgument("fixture Volume must be 0 to 10, got \(value)")
                    }
                },
            ],
            signals: [BusSignal("Poked", [BusArg("what", "s")])])
    }
}
