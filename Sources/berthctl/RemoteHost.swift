import BerthKit
import Glibc

/// A host berthctl reaches over SSH (`-H [USER@]HOST[:PORT]`, as `busctl -H` and `systemctl -H` take it): the D-Bus
/// connection is sd-bus's own remote transport, an address `unixexec:path=ssh,argv1=-xT,...` that runs
/// `systemd-stdio-bridge` on the host and speaks D-Bus through its stdin and stdout. SSH options come from the
/// user's SSH config (or the file of `--ssh-config` / `BERTH_SSH_CONFIG`).
struct RemoteHost: Sendable, Equatable {
    /// Which bus on the host: the user's session bus (`systemd-stdio-bridge --user`), the system bus, or a bus
    /// at an explicit address (`systemd-stdio-bridge --bus-path=ADDRESS`).
    enum Bus: Sendable, Equatable {
        case user
        case system
        case address(String)
    }

    /// The host as the user named it: the `-H` value, or its name in hosts.yaml. Rows and `--json` show it.
    var name: String
    /// `[USER@]HOST[:PORT]` as written.
    var spec: String
    /// What ssh connects to: `[USER@]HOST`.
    var destination: String
    var port: String?
    var bus: Bus

    /// Parses `[USER@]HOST[:PORT]` (an IPv6 address in brackets: `[::1]:2222`). `what` names the value in errors.
    static func parse(_ text: String, bus: Bus, name: String? = nil, what: String = "-H") throws -> RemoteHost {
        func bad(_ why: String) -> BerthError {
            .invalidArgument("\(what) \(BerthError.quote(text)): \(why); expected [USER@]HOST[:PORT]")
        }
        guard !text.isEmpty else { throw bad("the host is empty") }
        guard !text.hasPrefix("-") else { throw bad("a host cannot start with \"-\"") }
        guard !text.contains(where: { $0.isWhitespace || $0 == "," || $0 == ";" || $0 == "'" || $0 == "\"" }) else {
            throw bad("a host cannot contain spaces, quotes, \",\" or \";\"")
        }
        var user = ""
        var rest = Substring(text)
        if let at = rest.lastIndex(of: "@") {
            user = String(rest[..<at])
            rest = rest[rest.index(after: at)...]
            guard !user.isEmpty else { throw bad("the user before \"@\" is empty") }
        }
        var host: Substring
        var port: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw bad("\"[\" without \"]\"") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw bad("only :PORT may follow \"]\"") }
                port = after.dropFirst()
            }
        } else if let colon = rest.firstIndex(of: ":") {
            host = rest[..<colon]
            port = rest[rest.index(after: colon)...]
        } else {
            host = rest
        }
        guard !host.isEmpty else { throw bad("the host is empty") }
        if let port {
            guard let number = Int(port), (1...65535).contains(number), port.allSatisfy(\.isASCII) else {
                throw bad("the port \(BerthError.quote(String(port))) is not a number from 1 to 65535")
            }
        }
        return RemoteHost(
            name: name ?? text, spec: text, destination: user.isEmpty ? String(host) : user + "@" + host,
            port: port.map(String.init),
            bus: bus)
    }

    /// The command run on the host: `systemd-stdio-bridge` for the chosen bus.
    var bridgeCommand: [String] {
        switch bus {
        case .user: ["systemd-stdio-bridge", "--user"]
        case .system: ["systemd-stdio-bridge", "--system"]
        case .address(let address): ["systemd-stdio-bridge", "--bus-path=" + address]
        }
    }

    /// `ssh` with its options, the destination and the remote command. ssh joins the remote words with spaces and
    /// hands them to the remote user's shell, so each word is quoted for a POSIX shell.
    func sshArgv(_ remoteCommand: [String], settings: RemoteSettings) -> [String] {
        var argv = ["ssh", "-xT"]
        if let config = settings.sshConfig { argv += ["-F", config] }
        if let seconds = settings.connectTimeout { argv += ["-o", "ConnectTimeout=\(seconds)"] }
        if settings.batch { argv += ["-o", "BatchMode=yes"] }
        if let port { argv += ["-p", port] }
        return argv + ["--", destination] + remoteCommand.map(Self.shellQuoted)
    }

    /// The sd-bus address that reaches this host's bus over SSH (`unixexec:`, as `busctl -H` builds it).
    func busAddress(_ settings: RemoteSettings) -> String {
        let argv = sshArgv(bridgeCommand, settings: settings)
        var address = "unixexec:path=" + Self.addressEscaped(argv[0])
        for (i, word) in argv.enumerated().dropFirst() { address += ",argv\(i)=" + Self.addressEscaped(word) }
        return address
    }

    /// How messages name the bus: `the session bus of alice@pc1`, `the bus at unix:path=... on pc1`.
    var description: String {
        switch bus {
        case .user: "the session bus of \(name) (over SSH)"
        case .system: "the system bus of \(name) (over SSH)"
        case .address(let address): "the bus at \(address) on \(name) (over SSH)"
        }
    }

    /// A D-Bus address value: bytes outside `[-0-9A-Za-z_/.*]` as `%XX` (the D-Bus specification's escaping).
    static func addressEscaped(_ text: String) -> String {
        let hex = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "/"),
                UInt8(ascii: "."), UInt8(ascii: "*"):
                out.append(byte)
            default:
                out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 15)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// A word for a POSIX shell: as it is when it holds only safe characters, else in single quotes.
    static func shellQuoted(_ word: String) -> String {
        let safe = word.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"):
                true
            default: "-_./:=@%+,".utf8.contains(byte)
            }
        }
        if safe && !word.isEmpty { return word }
        return "'" + word.replacing("'", with: "'\\''") + "'"
    }
}

/// How ssh is run for every host of one berthctl call.
struct RemoteSettings: Sendable, Equatable {
    /// `ssh -F FILE` (`--ssh-config`, else `$BERTH_SSH_CONFIG`); nil: the user's own SSH config.
    var sshConfig: String?
    /// `ssh -o ConnectTimeout=N`, from `--host-timeout`.
    var connectTimeout: Int?
    /// `ssh -o BatchMode=yes`: no password prompts (several hosts at once).
    var batch = false

    init(_ options: BusOptions) {
        sshConfig = options.sshConfig ?? BusTarget.env("BERTH_SSH_CONFIG")
        connectTimeout = options.hostTimeout.map { max(1, Int($0.rounded(.up))) }
        batch = BusTarget.env(Fleet.childVariable) == "1"  // several hosts at once; "json": one host, may prompt
    }
}

extension RemoteHost {
    /// The host of `-H NAME`: a host of hosts.yaml by that name, else NAME as `[USER@]HOST[:PORT]`; the bus is
    /// the entry's, else `--remote-address`, `--system` or the user's session bus.
    static func resolve(_ name: String, _ options: BusOptions) throws -> RemoteHost {
        let bus: Bus = options.remoteAddress.map { .address($0) } ?? (options.system ? .system : .user)
        if let file = try HostsFile.load(), let host = try file.host(name, bus: bus) { return host }
        return try parse(name, bus: bus)
    }
}
