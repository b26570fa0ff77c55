import BerthKit
import Glibc

/// Where berthctl finds the daemon: `--address`, `--system`, the session bus when there is one, else the private
/// bus `berthctl up` starts in the runtime folder on hosts without a session bus (containers, SSH, lab PCs).
enum BusTarget: CustomStringConvertible {
    case address(String)
    case system
    case session
    /// A bus on another host, reached over SSH (`-H`).
    case remote(RemoteHost, RemoteSettings)
    /// No bus found; `privateSocket` is where `berthctl up` would create one.
    case none(privateSocket: String)

    static func env(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        let text = String(cString: value)
        return text.isEmpty ? nil : text
    }

    /// berth's runtime folder for this user: `$XDG_RUNTIME_DIR/berth`, else `/tmp/berth-<uid>`.
    static var runtimeDir: String {
        if let dir = env("XDG_RUNTIME_DIR") { return dir + "/berth" }
        return "/tmp/berth-\(getuid())"
    }

    static var privateSocket: String { runtimeDir + "/bus" }

    /// The lock file of the berthd that serves this bus (it holds the daemon's pid).
    var lockFile: String {
        if case .system = self { return "/run/berth/berthd.lock" }
        return BusTarget.runtimeDir + "/berthd.lock"
    }

    static func resolve(_ options: BusOptions) -> BusTarget {
        if let name = options.host.first {
            // validate() has parsed it; a hosts.yaml that changed since is read as it is now.
            let host = (try? RemoteHost.resolve(name, options))
                ?? RemoteHost(name: name, spec: name, destination: name, port: nil, bus: .user)
            return .remote(host, RemoteSettings(options))
        }
        if let address = options.address { return .address(address) }
        if options.system { return .system }
        if env("DBUS_SESSION_BUS_ADDRESS") != nil { return .session }
        if let dir = env("XDG_RUNTIME_DIR"), FileSystem.exists(dir + "/bus") { return .session }
        if FileSystem.exists(privateSocket) { return .address("unix:path=" + privateSocket) }
        return .none(privateSocket: privateSocket)
    }

    var busAddress: BusAddress? {
        switch self {
        case .address(let a): .address(a)
        case .system: .system
        case .session: .session
        case .remote(let host, let settings): .address(host.busAddress(settings))
        case .none: nil
        }
    }

    var isRemote: Bool { if case .remote = self { true } else { false } }

    var description: String {
        switch self {
        case .address(let a): "the bus at \(a)"
        case .system: "the system bus"
        case .session: "the session bus"
        case .remote(let host, _): host.description
        case .none: "no bus"
        }
    }

    func connect() throws -> BusConnection {
        guard let address = busAddress else {
            throw CLIError("no session bus found (no DBUS_SESSION_BUS_ADDRESS, no $XDG_RUNTIME_DIR/bus): start one with `berthctl up`")
        }
        do {
            return try BusConnection(address, description: "berthctl")
        } catch {
            throw CLIError("cannot connect to \(description): \(BerthError.wrapping(error).message)")
        }
    }
}

/// The daemon's well-known name and objects, for calls.
enum Berth {
    static let name = "org.berth.Berth1"
    static let root = "/org/berth/Berth1"
    static let manager = "org.berth.Berth1.Manager"
}

extension BusConnection {
    /// A call to berthd.
    func berth(_ path: String, _ interface: String, _ member: String, _ args: [DBusValue] = [],
        timeout: Duration = .seconds(25)) async throws -> [DBusValue]
    {
        try await call(Berth.name, path, interface, member, args, timeout: timeout)
    }

    func manager(_ member: String, _ args: [DBusValue] = [], timeout: Duration = .seconds(25)) async throws -> [DBusValue] {
        try await berth(Berth.root, Berth.manager, member, args, timeout: timeout)
    }

    func berthProperty(_ path: String, _ interface: String, _ name: String) async throws -> DBusValue {
        try await getProperty(Berth.name, path, interface, name)
    }

    /// All properties of one interface of one object.
    func berthProperties(_ path: String, _ interface: String, timeout: Duration = .seconds(25)) async throws
        -> [String: DBusValue]
    {
        let reply = try await call(
            Berth.name, path, "org.freedesktop.DBus.Properties", "GetAll", [.string(interface)], timeout: timeout)
        return (reply.first?.stringKeyed ?? [:]).mapValues(\.unwrapped)
    }
}
