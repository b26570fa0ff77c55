import BerthKit
import Glibc
import Synchronization

// A plugin whose start fails while a marker file exists, for the retry and RestartPlugin tests. In its state folder
// (<state>/flaky): `fail-start` makes start fail — as the recorder does on a full disk (StorageFull, which can pass),
// or, when the file says "permanent", with an invalid config (which cannot pass and is not retried). Every start
// attempt appends its CLOCK_MONOTONIC time in microseconds to `attempts`, one line each.

@_cdecl("berth_plugin_abi") public func berthPluginABI() -> UnsafePointer<CChar> { PluginABI.key }
@_cdecl("berth_plugin_entry") public func berthPluginEntry() -> UnsafeMutableRawPointer {
    PluginABI.entry(FlakyPlugin())
}

final class FlakyPlugin: BerthPlugin {
    let id = "flaky"
    let version = "1.0.0"
    private let object = Mutex<BusObject?>(nil)

    func validate(config: ConfigNode?) throws {}

    func start(context: PluginContext) async throws {
        let marker = context.stateDirectory + "/fail-start"
        try record(attemptIn: context.stateDirectory + "/attempts")
        if FileSystem.exists(marker) {
            let text = (try FileSystem.readText(marker)) ?? ""
            if text.hasPrefix("permanent") {
                throw BerthError.invalidConfig("flaky: the marker \"\(marker)\" says the failure is permanent")
            }
            throw BerthError(.storageFull, "COMMIT: database or disk is full (while \"\(marker)\" exists)")
        }
        let exported = try await context.export(
            path: context.objectRoot,
            interfaces: [BusInterface("org.berth.Berth1.Flaky", properties: [BusProperty("Up", "b", initial: .bool(true))])])
        object.withLock { $0 = exported }
    }

    func stop() async {
        object.withLock { o in
            o?.remove()
            o = nil
        }
    }

    private func record(attemptIn path: String) throws {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let line = "\(Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1000)\n"
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw BerthError.failed("flaky cannot open \"\(path)\": \(systemErrorText(errno))") }
        defer { close(fd) }
        try FileSystem.writeAll(fd, Array(line.utf8), path: path)
    }
}
