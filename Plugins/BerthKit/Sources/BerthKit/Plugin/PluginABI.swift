/// The plugin ABI check. A plugin exports two C symbols:
///
/// ```swift
/// @_cdecl("berth_plugin_abi") public func berthPluginABI() -> UnsafePointer<CChar> { PluginABI.key }
/// @_cdecl("berth_plugin_entry") public func berthPluginEntry() -> UnsafeMutableRawPointer {
///     PluginABI.entry(MyPlugin())
/// }
/// ```
///
/// `key` is inlined into the plugin when it is compiled, so it records the BerthKit the plugin was built
/// against; the host compares it with its own before any Swift type crosses. Bump `revision` whenever BerthKit's
/// public API changes (the ABI test in BerthKitTests fails until you do): a stale plugin then fails cleanly
/// with `abi-mismatch` instead of crashing the daemon.
public enum PluginABI {
    /// BerthKit's version and API revision, as a NUL-terminated C string with static lifetime.
    @inlinable
    public static var key: UnsafePointer<CChar> {
        let text: StaticString = "berthkit 0.1 api 6"
        return UnsafeRawPointer(text.utf8Start).assumingMemoryBound(to: CChar.self)
    }

    /// The key as a Swift string (the host's copy).
    public static var keyString: String { String(cString: key) }

    /// The retained pointer `berth_plugin_entry` returns; the host takes ownership.
    public static func entry(_ plugin: some BerthPlugin) -> UnsafeMutableRawPointer {
        Unmanaged.passRetained(plugin as AnyObject).toOpaque()
    }

    /// The host side: the plugin object behind an entry pointer, or nil if it is not a BerthPlugin.
    public static func plugin(from pointer: UnsafeMutableRawPointer) -> (any BerthPlugin)? {
        Unmanaged<AnyObject>.fromOpaque(pointer).takeRetainedValue() as? any BerthPlugin
    }
}
