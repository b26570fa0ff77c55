import BerthKit

// A plugin built "against another BerthKit": its ABI key differs, so the host must refuse it before any Swift
// type crosses (LastError abi-mismatch).
@_cdecl("berth_plugin_abi") public func berthPluginABI() -> UnsafePointer<CChar> {
    let stale: StaticString = "berthkit 0.0 api 0"
    return UnsafeRawPointer(stale.utf8Start).assumingMemoryBound(to: CChar.self)
}

@_cdecl("berth_plugin_entry") public func berthPluginEntry() -> UnsafeMutableRawPointer? {
    fatalError("the host must never call the entry of a plugin whose ABI key does not match")
}
