import BerthKit
import Synchronization

/// One plugin file as the daemon tracks it: the loaded plugin (when loading worked), its Plugin object on the bus
/// and its state. `LastError`/`LastErrorMessage` say why a plugin is `failed`.
final class PluginRecord: Sendable {
    let id: String
    let path: String
    let plugin: (any BerthPlugin)?
    let object: BusObject
    /// Serialises this plugin's start, stop, restart and retries (never held across another record's).
    let lifecycle = AsyncLock()
    private let section = Mutex<ConfigNode?>(nil)
    private let retry = Mutex<Retry>(Retry())

    /// The automatic restart after a start failure that can pass: `failures` in a row so far (the backoff doubles
    /// with each), and the task that sleeps until the next attempt, with a token so a stale task can tell.
    struct Retry {
        var failures = 0
        var token: UInt64 = 0
        var task: Task<Void, Never>?
    }

    /// The first retry waits 1 s, each next one twice as long, at most 60 s.
    static func retryDelay(afterFailures failures: Int) -> Duration {
        .seconds(min(60, 1 << min(max(failures - 1, 0), 6)))
    }

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
    var lastErrorMessage: String { object.get("LastErrorMessage")?.string ?? "" }

    func setState(_ state: String, failure: PluginFailure? = nil) {
        var changes: [(String, DBusValue)] = [("State", .string(state))]
        if let failure {
            changes += [("LastError", .string(failure.code)), ("LastErrorMessage", .string(failure.message))]
        }
        object.set(changes)
    }

    var currentSection: ConfigNode? { section.withLock { $0 } }
    func setSection(_ node: ConfigNode?) { section.withLock { $0 = node } }
    var lastError: String { object.get("LastError")?.string ?? "" }

    /// Counts a failure that can pass and arms `makeTask(token, delay)` as the one pending retry; returns the delay.
    func scheduleRetry(_ makeTask: (UInt64, Duration) -> Task<Void, Never>) -> Duration {
        retry.withLock { r in
            r.task?.cancel()
            r.failures += 1
            r.token &+= 1
            let delay = Self.retryDelay(afterFailures: r.failures)
            r.task = makeTask(r.token, delay)
            return delay
        }
    }

    /// The pending retry task claims its turn: true only if it is still the armed one (not cancelled, not replaced).
    func claimRetry(_ token: UInt64) -> Bool {
        retry.withLock { r in
            guard r.token == token, let task = r.task, !task.isCancelled else { return false }
            r.task = nil
            return true
        }
    }

    /// Cancels a pending retry; `resetBackoff` also forgets the failures so far (a start by hand, a new config).
    func cancelRetry(resetBackoff: Bool) {
        retry.withLock { r in
            r.task?.cancel()
            r.task = nil
            r.token &+= 1
            if resetBackoff { r.failures = 0 }
        }
    }

    func resetBackoff() { retry.withLock { $0.failures = 0 } }
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
