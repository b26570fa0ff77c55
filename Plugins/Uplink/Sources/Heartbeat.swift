import BerthKit
import Glibc

/// berth's own heartbeat (`uplink.Heartbeat`): computed, never a constant. `status` is `ok`, `degraded` (a
/// problem that loses nothing yet: messages dropped from the outbox, little free space, a destination failing) or
/// `error` (a plugin failed), and `problems` says which.
enum Heartbeat {
    static let lowFreeBytes: UInt64 = 256 << 20

    static func compute(client: BusConnection, service: UplinkService, stateDirectory: String) async -> UplinkEvent {
        var problems: [String] = []
        var plugins: [(String, JSONValue)] = []
        var recorderActive = false
        do {
            let reply = try await client.call(
                "org.berth.Berth1", BusEvents.root, "org.berth.Berth1.Manager", "ListPlugins", timeout: .seconds(5))
            for row in reply.first?.items ?? [] {
                let f = (row.items ?? []).map { $0.string ?? "" }
                guard f.count >= 3 else { continue }
                plugins.append((f[0], .string(f[2])))
                if f[2] == "failed" { problems.append("plugin \(f[0]) failed") }
                if f[0] == "recorder" && f[2] == "active" { recorderActive = true }
            }
        } catch {
            problems.append("cannot list the plugins: \(error)")
        }
        var info = statvfs()
        let free: UInt64? = statvfs(stateDirectory, &info) == 0 ? UInt64(info.f_bavail) * UInt64(info.f_frsize) : nil
        if let free, free < lowFreeBytes { problems.append("only \(FileSystem.describeSize(Int64(free))) free") }
        var lastRecordingAge: JSONValue = .null
        if recorderActive,
            let status = try? await client.call(
                "org.berth.Berth1", BusEvents.root + "/recorder", "org.berth.Berth1.Recorder", "Status",
                timeout: .seconds(5)
            ).first?.stringKeyed, let last = status["last_recording_usec"]?.unwrapped.uint64, last > 0
        {
            let now = SystemClock.wallUSec()
            lastRecordingAge = .double(Double(now > last ? now - last : 0) / 1e6)
        }
        let dropped = service.outbox.dropped
        if dropped > 0 { problems.append("\(dropped) messages dropped from the full outbox") }
        var destinations: [(String, JSONValue)] = []
        for (name, d) in service.destinationStates().sorted(by: { $0.key < $1.key }) {
            destinations.append(
                (name, .object([("connected", .bool(d.connected)), ("last_error", .string(d.lastError))])))
            if !d.connected && !d.lastError.isEmpty { problems.append("destination \(name) is not reachable") }
        }
        let status = problems.contains { $0.hasPrefix("plugin ") } ? "error" : problems.isEmpty ? "ok" : "degraded"
        return UplinkEvent(
            plugin: "uplink", event: "Heartbeat",
            fields: [
                ("status", .string(status)), ("problems", .array(problems.map(JSONValue.string))),
                ("plugins", .object(plugins)), ("free_bytes", free.map(JSONValue.uint) ?? .null),
                ("last_recording_age_s", lastRecordingAge), ("pending", .uint(UInt64(service.outbox.pending))),
                ("dropped", .uint(dropped)), ("destinations", .object(destinations)),
            ])
    }
}
