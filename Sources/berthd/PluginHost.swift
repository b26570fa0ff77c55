import BerthKit
import Synchronization

/// One plugin file as the daemon tracks it: the loaded plugin (when loading worked), its Plugin object on the bus
/// and its state. `LastError`/`LastErrorMessage` say why a plugin is `failed`.
final class PluginRecord: Sendable {
    let id: String
    let path: String
    let plugin: (any BerthPlugin)?
    let object: BusObject
    private let section = Mutex<ConfigNode?>(nil)

    init(id: String, path: String, plugin: (any BerthPlugin)?, object: BusObject) {
        self.id = id
        self.path = path
        self.plugin = plugin
        self.object = object
    }

    static let interfaceName = "org.berth.Berth1.Plugin"

    static func interface(id: String, version: String, path: String, failure: PluginFailure?) -> BusInterface {
        BusInterface(
            interfaceName,
            properties: [
                BusProperty("Id", "s", initial: .string(id), change: .const),
                BusProperty("Version", "s", initial: .string(version), change: .const),
                BusProperty("State", "s", initial: .string(failure == nil ? "loaded" : "failed")),
                BusProperty("LastError", "s", initial: .string(failure?.code ?? "")),
                BusProperty("LastErrorMessage", "s", initial: .string(failure?.message ?? "")),
                BusProperty("Path", "s", initial: .string(path), change: .const),
            ])
    }

    var state: String { object.get("State")?.string ?? "failed" }
    var isActive: Bool { state == "active" }

    func setState(_ state: String, failure: PluginFailure? = nil) {
        var changes: [(String, DBusValue)] = [("State", .string(state))]
        if let failure {
            changes += [("LastError", .string(failure.code)), ("LastErrorMessage", .string(failure.message))]
        }
        object.set(changes)
    }

    var currentSection: ConfigNode? { section.withLock { $0 } }
    func setSection(_ node: ConfigNode?) { section.withLock { $0 = node } }
}

/// Finds plugin files, loads them and orders them for start (dependencies first) and stop (reverse).
enum PluginDiscovery {
    /// Plugin files in the given folders. In explicit folders every `*.so` is a plugin; in the build folder next
    /// to berthd (a development build) only `lib*Plugin.so`.
    static func files(in dirs: [String], developmentDir: String?) -> [String] {
        var result: [String] = []
        for dir in dirs {
            for name in FileSystem.list(dir) where name.hasSuffix(".so") {
                if dir == developmentDir && !(name.hasPrefix("lib") && name.hasSuffix("Plugin.so")) { continue }
                result.append(dir + "/" + name)
            }
        }
        return result
    }

    /// The default folders: `<exe>/../lib/berth/plugins` when it exists (an installed berth), else the
    /// executable's own folder (a development build, where SwiftPM puts lib*Plugin.so beside berthd).
    static func defaultDirs() -> (dirs: [String], developmentDir: String?) {
        guard let exe = FileSystem.executablePath() else { return ([], nil) }
        let bin = FileSystem.directoryName(exe)
        let installed = FileSystem.directoryName(bin) + "/lib/berth/plugins"
        if FileSystem.isDirectory(installed) { return ([installed], nil) }
        return ([bin], bin)
    }

    /// Start order: each plugin after the plugins it depends on; otherwise by id.
    static func startOrder(_ records: [PluginRecord]) -> [PluginRecord] {
        let byID = Dictionary(records.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var ordered: [PluginRecord] = []
        var visiting: Set<String> = []
        var done: Set<String> = []
        func visit(_ record: PluginRecord) {
            guard !done.contains(record.id), !visiting.contains(record.id) else { return }
            visiting.insert(record.id)
            for dependency in (record.plugin?.dependencies ?? []).sorted() {
                if let other = byID[dependency] { visit(other) }
            }
            visiting.remove(record.id)
            done.insert(record.id)
            ordered.append(record)
        }
        for record in records.sorted(by: { $0.id < $1.id }) { visit(record) }
        return ordered
    }
}
