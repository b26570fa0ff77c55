import BerthKit

// A Swift library with the right ABI key but no berth_plugin_entry (LastError no-entry-symbol).
@_cdecl("berth_plugin_abi") public func berthPluginABI() -> UnsafePointer<CChar> { PluginABI.key }

public struct NotAPlugin {
    public init() {}
}
