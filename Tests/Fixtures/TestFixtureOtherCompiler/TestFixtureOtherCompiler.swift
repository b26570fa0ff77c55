import BerthKit
import Glibc

// A plugin "built by another toolchain": its ABI key is its own (the same BerthKit revision and interface hash)
// except for the compiler part, which names another compiler. The host must refuse it as abi-mismatch before any
// Swift type crosses.

nonisolated(unsafe) let otherCompilerKey: UnsafeMutablePointer<CChar> = {
    let own = String(cString: PluginABI.key)
    let base = own.firstRange(of: " compiler ").map { String(own[..<$0.lowerBound]) } ?? own
    return strdup(base + " compiler Clang 0.0.0 (another toolchain)")!
}()

@_cdecl("berth_plugin_abi") public func berthPluginABI() -> UnsafePointer<CChar> { UnsafePointer(otherCompilerKey) }

@_cdecl("berth_plugin_entry") public func berthPluginEntry() -> UnsafeMutableRawPointer? {
    fatalError("the host must never call the entry of a plugin built by another compiler")
}
