import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// Shared pieces of the services tests: a daemon with the plugin, property reads and job waits through a BerthKit
/// client, and /proc scans.
struct ServicesWorld {
    let env: TestEnvironment
    let client: BusConnection
    let daemon: DaemonProcess

    static let name = "org.berth.Berth1"
    static let root = "/org/berth/Berth1/services"
    static let services = "org.berth.Berth1.Services"
    static let service = "org.berth.Berth1.Service"

    static func start(_ env: TestEnvironment, config: String = "") async throws -> ServicesWorld {
        if !FileManager.default.fileExists(atPath: env.pluginDir + "/libServicesPlugin.so") {
            try env.installPlugins(["libServicesPlugin.so"])
        }
        if !config.isEmpty { try env.writeConfig(config) }
        let daemon = try await env.startDaemon()
        return ServicesWorld(env: env, client: try env.connect(), daemon: daemon)
    }

    func path(_ name: String) -> String { BusPath.encode(Self.root, name) }

    func property(_ service: String, _ property: String) async throws -> DBusValue {
        try await client.getProperty(Self.name, path(service), Self.service, property)
    }

    func state(_ service: String) async throws -> String { try await property(service, "State").string ?? "" }
    func mainPID(_ service: String) async throws -> Int32 { Int32(try await property(service, "MainPID").uint32 ?? 0) }

    func waitForState(_ service: String, _ wanted: String, timeout: Duration = .seconds(10)) async throws {
        try await waitUntil("service \(service) is \(wanted)", timeout: timeout) { try await state(service) == wanted }
    }

    func call(_ member: String, _ args: [DBusValue]) async throws -> [DBusValue] {
        try await client.call(Self.name, Self.root, Self.services, member, args)
    }

    func define(_ name: String, _ yaml: String) async throws {
        _ = try await call("Define", [.string(name), .string(yaml)])
    }

    /// Calls Start/Stop/Restart and waits for the job's JobRemoved; returns its result.
    func job(_ member: String, _ service: String) async throws -> String {
        let removed = try await client.signals(
            path: "/org/berth/Berth1", interface: "org.berth.Berth1.Manager", member: "JobRemoved")
        let reply = try await call(member, [.string(service)])
        let id = reply[0].uint32
        for await signal in removed where signal.arguments.first?.uint32 == id {
            return signal.arguments[3].string ?? ""
        }
        throw TestFailure("no JobRemoved for job \(String(describing: id))")
    }
}

/// The pids of live (non-zombie) processes in process group `pgid`, from /proc.
func processGroupMembers(_ pgid: Int32) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap { entry -> Int32? in
        guard let pid = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 3, fields[0] != "Z", Int32(fields[2]) == pgid else { return nil }
        return pid
    }
}

/// A script file in the test's folder, executable.
func writeScript(_ env: TestEnvironment, _ name: String, _ text: String) throws -> String {
    let path = env.root + "/" + name
    try FileSystem.writeAtomically(path, text: text, mode: 0o755)
    return path
}

/// Whether `pid` is a live process (a zombie waiting to be reaped is not).
func isAlive(_ pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return false }
    return stat[stat.index(after: close)...].split(separator: " ").first != "Z"
}
