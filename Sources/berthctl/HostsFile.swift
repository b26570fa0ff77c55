import BerthKit
import Glibc

/// `$XDG_CONFIG_HOME/berth/hosts.yaml` (default `~/.config/berth/hosts.yaml`): named hosts and groups of hosts for
/// `-H NAME` and `--hosts GROUP`. Strict like berth.yaml: an unknown key, a member that is neither a group, a
/// host nor a valid `[USER@]HOST[:PORT]`, or a group that contains itself is an error at its `FILE:LINE`.
///
///     hosts:
///       pc1: alice@pc1.lab:2222          # short form: what ssh connects to
///       rec7:
///         ssh: field@10.1.0.7            # default: the name
///         bus: system                    # user (default) or system
///         address: unix:path=/run/berth/bus   # or an explicit bus address on the host
///     groups:
///       lab: [pc1, pc2.lab]              # a host of `hosts:` or [USER@]HOST[:PORT]
///       field: [rec7]
///       all: [lab, field]                # groups nest
struct HostsFile {
    var path: String
    /// Named hosts, with the bus each is asked for on the host (nil: as the command line says).
    var hosts: [String: (spec: String, bus: RemoteHost.Bus?, mark: ConfigMark)] = [:]
    /// Group name to its members as written, each with its mark.
    var groups: [String: (members: [(String, ConfigMark)], mark: ConfigMark)] = [:]

    static var defaultPath: String {
        let base =
            BusTarget.env("XDG_CONFIG_HOME")
            ?? ((BusTarget.env("HOME") ?? String(cString: getpwuid(getuid()).pointee.pw_dir)) + "/.config")
        return base + "/berth/hosts.yaml"
    }

    /// The file, or nil when it does not exist.
    static func load(_ path: String = defaultPath) throws -> HostsFile? {
        guard FileSystem.exists(path) else { return nil }
        var file = HostsFile(path: path)
        let root = try YAMLParser.parseFile(atPath: path) ?? .null(ConfigMark(file: path, line: 1, column: 1))
        let top = try ConfigReader(root, path: "")
        if let hosts = try top.reader("hosts") {
            for entry in hosts.entries() {
                let keyPath = hosts.keyPath(entry.key)
                switch entry.value {
                case .scalar(let spec, let mark, _):
                    _ = try checked(spec, mark: mark, path: keyPath, bus: nil)
                    file.hosts[entry.key] = (spec, nil, entry.keyMark)
                case .mapping, .null:
                    let host = try ConfigReader(entry.value, path: keyPath)
                    let spec = try host.nonEmptyString("ssh") ?? entry.key
                    var bus: RemoteHost.Bus? = try host.oneOf("bus", ["user", "system"]).map {
                        $0 == "system" ? .system : .user
                    }
                    if let address = try host.nonEmptyString("address") {
                        if host.has("bus") { throw host.error("address", "give either bus or address, not both") }
                        bus = .address(address)
                    }
                    try host.finish()
                    _ = try checked(spec, mark: entry.value.mark, path: keyPath, bus: bus)
                    file.hosts[entry.key] = (spec, bus, entry.keyMark)
                default:
                    throw BerthError.invalidConfig(
                        at: entry.value.mark, path: keyPath,
                        "expected [USER@]HOST[:PORT] or a mapping with ssh, bus, address; got \(entry.value.kindName)")
                }
            }
        }
        if let groups = try top.reader("groups") {
            for entry in groups.entries() {
                let keyPath = groups.keyPath(entry.key)
                if file.hosts[entry.key] != nil {
                    throw BerthError.invalidConfig(
                        at: entry.keyMark, path: keyPath, "\"\(entry.key)\" is already the name of a host in hosts:")
                }
                guard case .sequence(let items, _) = entry.value else {
                    throw BerthError.invalidConfig(
                        at: entry.value.mark, path: keyPath,
                        "expected a list of hosts and groups, got \(entry.value.kindName)")
                }
                guard !items.isEmpty else {
                    throw BerthError.invalidConfig(at: entry.value.mark, path: keyPath, "the group has no members")
                }
                var members: [(String, ConfigMark)] = []
                for item in items {
                    guard case .scalar(let text, let mark, _) = item else {
                        throw BerthError.invalidConfig(
                            at: item.mark, path: keyPath, "a member must be a host or group name, got \(item.kindName)")
                    }
                    members.append((text, mark))
                }
                file.groups[entry.key] = (members, entry.keyMark)
            }
        }
        try top.finish()
        // Every member is a group, a named host or a valid destination, and no group contains itself.
        for name in file.groups.keys.sorted() { _ = try file.expand(group: name) }
        return file
    }

    private static func checked(_ spec: String, mark: ConfigMark, path: String, bus: RemoteHost.Bus?) throws
        -> RemoteHost
    {
        do {
            return try RemoteHost.parse(spec, bus: bus ?? .user, what: "host")
        } catch let error as BerthError {
            throw BerthError.invalidConfig(at: mark, path: path, error.message)
        }
    }

    /// A named host of `hosts:`, with `bus` where the entry does not set one; nil when `name` is not one.
    func host(_ name: String, bus: RemoteHost.Bus) throws -> RemoteHost? {
        guard let entry = hosts[name] else { return nil }
        return try RemoteHost.parse(entry.spec, bus: entry.bus ?? bus, name: name, what: "host \(name)")
    }

    /// The members of a group as host names or destinations, nested groups expanded, each once, in order.
    func expand(group: String) throws -> [String] {
        var out: [String] = []
        var seen: Set<String> = []
        try expand(group, trail: [], into: &out, seen: &seen)
        return out
    }

    private func expand(_ group: String, trail: [String], into out: inout [String], seen: inout Set<String>) throws {
        guard let (members, _) = groups[group] else { return }
        for (member, mark) in members {
            if groups[member] != nil {
                if member == group || trail.contains(member) {
                    let cycle = (trail + [group, member]).drop { $0 != member }.joined(separator: " -> ")
                    throw BerthError.invalidConfig(
                        at: mark, path: "groups." + group, "the group contains itself: \(cycle)")
                }
                try expand(member, trail: trail + [group], into: &out, seen: &seen)
                continue
            }
            if hosts[member] == nil {
                do {
                    _ = try RemoteHost.parse(member, bus: .user, what: "member")
                } catch let error as BerthError {
                    throw BerthError.invalidConfig(
                        at: mark, path: "groups." + group,
                        "\(error.message) (it is not a group or a host of hosts: either)")
                }
            }
            if seen.insert(member).inserted { out.append(member) }
        }
    }
}
