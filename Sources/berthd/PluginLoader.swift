import BerthKit
import Glibc

/// Why a plugin file did not become a running plugin: a stable code (the Plugin object's `LastError`) and a
/// sentence naming the file (`LastErrorMessage`).
struct PluginFailure: Error, Sendable, Equatable {
    var code: String
    var message: String
}

/// Loads plugin libraries: checks the file (exists, ELF, Swift), `dlopen(RTLD_NOW | RTLD_LOCAL)`, compares
/// `berth_plugin_abi` with the host's key before any Swift type crosses, then calls `berth_plugin_entry`.
/// Libraries are never closed: unloading a Swift image is unsafe.
///
/// A plugin may instead export `berth_plugin_abi_<id>` / `berth_plugin_entry_<id>` (id from the file name, e.g.
/// `libPickupPlugin.so` → `pickup`): plugin targets are also linked into the one test binary, where two plugins
/// exporting the same C symbol fail to link.
enum PluginLoader {
    typealias ABIFunction = @convention(c) () -> UnsafePointer<CChar>?
    typealias EntryFunction = @convention(c) () -> UnsafeMutableRawPointer?

    /// `libServicesPlugin.so` → `services`: the id a plugin is known by before (or without) loading it.
    static func expectedID(forFile path: String) -> String {
        var name = FileSystem.baseName(path)
        if name.hasPrefix("lib") { name.removeFirst(3) }
        if let dot = name.firstIndex(of: ".") { name = String(name[..<dot]) }
        if name.hasSuffix("Plugin") { name.removeLast(6) }
        return name.lowercased().filter { $0.isLetter || $0.isNumber || $0 == "_" }
    }

    static func load(_ path: String) -> Result<any BerthPlugin, PluginFailure> {
        func fail(_ code: String, _ message: String) -> Result<any BerthPlugin, PluginFailure> {
            .failure(PluginFailure(code: code, message: message))
        }
        guard FileSystem.exists(path) else {
            return fail("not-found", "plugin file \"\(path)\" does not exist")
        }
        do {
            switch try ElfInspector.inspect(path) {
            case .notELF: return fail("not-elf", "plugin file \"\(path)\" is not an ELF shared library")
            case .notSwift:
                return fail("not-swift", "plugin file \"\(path)\" is not a Swift library (no swift5_* metadata sections)")
            case .swift: break
            }
        } catch {
            return fail("unreadable", "plugin file \"\(path)\" cannot be read: \(error)")
        }
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            let reason = dlerror().map { String(cString: $0) } ?? "unknown error"
            return fail("load-failed", "plugin file \"\(path)\" cannot be loaded: \(reason)")
        }
        let suffix = "_" + expectedID(forFile: path)
        guard let abiSymbol = dlsym(handle, "berth_plugin_abi" + suffix) ?? dlsym(handle, "berth_plugin_abi") else {
            return fail("no-abi-symbol", "plugin file \"\(path)\" does not export berth_plugin_abi: not a berth plugin")
        }
        let abi = unsafeBitCast(abiSymbol, to: ABIFunction.self)().map { String(cString: $0) } ?? ""
        guard abi == PluginABI.keyString else {
            return fail(
                "abi-mismatch",
                "plugin file \"\(path)\" was built against \"\(abi)\" but this berthd has \"\(PluginABI.keyString)\": rebuild the plugin"
            )
        }
        guard let entrySymbol = dlsym(handle, "berth_plugin_entry" + suffix) ?? dlsym(handle, "berth_plugin_entry") else {
            return fail("no-entry-symbol", "plugin file \"\(path)\" does not export berth_plugin_entry")
        }
        guard let pointer = unsafeBitCast(entrySymbol, to: EntryFunction.self)(),
            let plugin = PluginABI.plugin(from: pointer)
        else {
            return fail("not-a-plugin", "berth_plugin_entry of \"\(path)\" did not return a BerthPlugin")
        }
        return .success(plugin)
    }
}
