// The C entry symbols of libUplinkPlugin.so. They live in their own target (see Package.swift): every plugin exports
// the same two symbols, and the plugins' logic is linked together into the one test binary.
import BerthKit
import UplinkPlugin

@_cdecl("berth_plugin_abi") public func berthPluginABI() -> UnsafePointer<CChar> { PluginABI.key }
@_cdecl("berth_plugin_entry") public func berthPluginEntry() -> UnsafeMutableRawPointer {
    PluginABI.entry(makeUplinkPlugin())
}
