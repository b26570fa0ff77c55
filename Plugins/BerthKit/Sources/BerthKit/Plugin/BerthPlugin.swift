/// A berth plugin: a shared library that exports `berth_plugin_abi` and `berth_plugin_entry` (see `PluginABI`)
/// and whose entry returns an object conforming to this protocol.
///
/// Lifecycle: `validate` (config section, nothing applied) → `start` → any number of `reload` → `stop`.
/// `start` exports the plugin's objects under `context.objectRoot`; a throw leaves the plugin `failed` with the
/// error on its Plugin object while the daemon goes on with the others.
public protocol BerthPlugin: AnyObject, Sendable {
    /// Short lower-case id: the config section key and the path element (`/org/berth/Berth1/<id>`).
    var id: String { get }
    var version: String { get }
    /// Ids of plugins that must start before this one (and stop after it). Missing or failed ones are skipped.
    var dependencies: [String] { get }

    /// Checks this plugin's config section (nil when absent) without applying anything. Throws
    /// `BerthError(.invalidConfig, "FILE:LINE: KEY.PATH: ...")`.
    func validate(config: ConfigNode?) throws
    func start(context: PluginContext) async throws
    /// Applies a changed, already validated, config section; touches only what changed.
    func reload(config: ConfigNode?) async throws
    /// Stops everything the plugin runs (children, threads, watches); the daemon exits after the last one.
    func stop() async

    /// Reopens log files (external logrotate; `ReopenLogs()` and SIGUSR2 to berthd).
    func reopenLogs() async

    /// Config as code: the plugin's current items as a config section (nil: nothing to export).
    func exportConfig() async -> ConfigNode?
    /// Checks a section of an imported file and says what importing it would change, changing nothing.
    func planImport(_ section: ConfigNode, replace: Bool) async throws -> [ConfigChange]
    /// Imports a section checked by `planImport`. All sections are planned before any is applied.
    func applyImport(_ section: ConfigNode, replace: Bool) async throws -> [ConfigChange]
}

extension BerthPlugin {
    public var dependencies: [String] { [] }
    public func reopenLogs() async {}
    public func reload(config: ConfigNode?) async throws {}
    public func exportConfig() async -> ConfigNode? { nil }
    public func planImport(_ section: ConfigNode, replace: Bool) async throws -> [ConfigChange] {
        throw BerthError.notSupported("plugin \"\(id)\" has nothing to import (section at \(section.mark))")
    }
    public func applyImport(_ section: ConfigNode, replace: Bool) async throws -> [ConfigChange] {
        try await planImport(section, replace: replace)
    }
}

/// One line of an import plan or result: `ImportConfig` returns them as `a(sss)`.
public struct ConfigChange: Sendable, Equatable {
    public enum Action: String, Sendable {
        case create, update, delete, unchanged
    }
    public var kind: String
    public var name: String
    public var action: Action

    public init(kind: String, name: String, action: Action) {
        self.kind = kind
        self.name = name
        self.action = action
    }
}
