import CBerthShim

/// The plugin ABI check. A plugin exports two C symbols:
///
/// ```swift
/// @_cdecl("berth_plugin_abi") public func berthPluginABI() -> UnsafePointer<CChar> { PluginABI.key }
/// @_cdecl("berth_plugin_entry") public func berthPluginEntry() -> UnsafeMutableRawPointer {
///     PluginABI.entry(MyPlugin())
/// }
/// ```
///
/// `key` is emitted into the plugin when it is compiled (`@_alwaysEmitIntoClient`: `@inlinable` alone is not
/// inlined at -Onone, and a debug plugin would then return the host's own key), so it records the BerthKit
/// revision, the hash of BerthKit's public interface and the compiler the plugin was built with (CBerthShim's
/// `berth_abi.h`). The host compares it with its own before any Swift type crosses: a plugin built by another
/// toolchain or against another BerthKit fails cleanly with `abi-mismatch` instead of crashing the daemon.
/// `PluginABITests` fails until the interface hash matches the built module (`BERTH_UPDATE_ABI_LOCK=1`).
public enum PluginABI {
    /// The key as a NUL-terminated C string with static lifetime, compiled in the caller's image.
    @_alwaysEmitIntoClient
    public static var key: UnsafePointer<CChar> { cberth_abi_key() }

    /// The key as a Swift string (the host's copy: compiled into libBerthKit.so).
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
