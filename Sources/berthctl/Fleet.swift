import BerthKit
import CBerthShim
import Dispatch
import Glibc
import Synchronization

/// berthctl on other hosts: `-H HOST` (repeatable) and `--hosts GROUP`.
///
/// One `-H` runs the command here with its bus over SSH (`BusTarget.remote`), so its output and exit code are
/// those of a local call; `--json` then adds `"host"` to every object printed. Several hosts (or a group) run one
/// berthctl per host, in parallel and at most `--parallel` at once, each with `-H` for its host; the rows say
/// host, result and detail, and the exit is non-zero naming the hosts that failed. A host that does not answer
/// within `--host-timeout` is a failed row: its berthctl and ssh (one process group) are killed.
///
/// `up`, `down` and `doctor` act on the machine they run on, so with `-H` they run as `berthctl` on the host
/// through ssh.
enum Fleet {
    /// Set in the environment of the per-host berthctl a fleet run starts: it then leaves the row to its parent.
    static let childVariable = "BERTH_FLEET_CHILD"
    /// Commands that act on the machine itself, not through the bus.
    static let onTheHost: Set<String> = ["up", "down", "doctor"]
    static let defaultTimeout = 30.0
    static let defaultParallel = 16

    /// The host options of one command line, and the command line without them.
    struct Scan {
        var hosts: [String] = []
        var groups: [String] = []
        var json = false
        var system = false
        var user = false
        var address = false
        var remoteAddress: String?
        var sshConfig: String?
        var hostTimeout: Double?
        var parallel: Int?
        /// The arguments without -H, --hosts, --remote-address, --ssh-config, --host-timeout, --parallel, --user
        /// and --system.
        var rest: [String] = []

        static let valued = [
            "-H", "--host", "--hosts", "--remote-address", "--ssh-config", "--host-timeout", "--parallel",
        ]

        init(_ arguments: [String]) throws {
            var i = 0
            while i < arguments.count {
                let word = arguments[i]
                i += 1
                if word == "--" {
                    rest += arguments[(i - 1)...]
                    break
                }
                var name = word
                var value: String?
                if let equals = word.firstIndex(of: "="), word.hasPrefix("--") {
                    name = String(word[..<equals])
                    value = String(word[word.index(after: equals)...])
                } else if word.hasPrefix("-H"), word.count > 2 {
                    name = "-H"
                    value = String(word.dropFirst(2))
                }
                switch name {
                case "--json": json = true
                case "--system": system = true
                case "--user": user = true
                case "--address":
                    address = true
                    rest.append(word)
                    continue
                default:
                    guard Self.valued.contains(name) else {
                        rest.append(word)
                        continue
                    }
                    if value == nil {
                        guard i < arguments.count else { throw CLIError("\(name) needs a value", code: 64) }
                        value = arguments[i]
                        i += 1
                    }
                    try take(name, value!)
                    continue
                }
                rest.append(word)
            }
        }

        private mutating func take(_ name: String, _ value: String) throws {
            switch name {
            case "-H", "--host": hosts.append(value)
            case "--hosts": groups.append(value)
            case "--remote-address": remoteAddress = value
            case "--ssh-config": sshConfig = value
            case "--host-timeout":
                guard let seconds = Double(value), seconds > 0, seconds <= 86400 else {
                    throw CLIError(
                        "--host-timeout \(BerthError.quote(value)): expected seconds from 0 to 86400", code: 64)
                }
                hostTimeout = seconds
            default:
                guard let count = Int(value), (1...256).contains(count) else {
                    throw CLIError("--parallel \(BerthError.quote(value)): expected a number from 1 to 256", code: 64)
                }
                parallel = count
            }
        }

        var remote: Bool { !hosts.isEmpty || !groups.isEmpty }

        /// The bus asked for on a host that does not name its own.
        var bus: RemoteHost.Bus { remoteAddress.map { .address($0) } ?? (system ? .system : .user) }

        /// The command's first word (after the options moved behind it).
        var command: String? { rest.first { !$0.hasPrefix("-") } }
    }

    /// Runs the command line when it names hosts and must not run here as it is: several hosts, `--json` (to add
    /// the host), or a command that acts on the host itself. Returns the exit code, or nil to go on as usual.
    static func run(_ arguments: [String]) async -> Int32? {
        let scan: Scan
        let hosts: [RemoteHost]
        do {
            scan = try Scan(arguments)
            guard scan.remote else { return nil }
            if scan.user && scan.system { throw CLIError("--user and --system exclude each other", code: 64) }
            if scan.address {
                throw CLIError(
                    "--address names a bus on this machine; with -H give the host's bus with --remote-address",
                    code: 64)
            }
            hosts = try resolve(scan)
        } catch let error as CLIError {
            CLI.printError(error.message)
            return error.code
        } catch {
            CLI.printError(BerthError.wrapping(error).message)
            return 1
        }
        let child = BusTarget.env(childVariable) != nil
        if scan.hosts.count == 1 && scan.groups.isEmpty {
            if let command = scan.command, onTheHost.contains(command) {
                return await onHost(hosts[0], scan)
            }
            if child || !scan.json { return nil }
            return await withHostInJSON(hosts[0], arguments)
        }
        return await runMany(hosts, scan)
    }

    /// The hosts of `-H` (each a name in hosts.yaml or `[USER@]HOST[:PORT]`) and of every `--hosts` group, each
    /// once, in order.
    static func resolve(_ scan: Scan) throws -> [RemoteHost] {
        let path = HostsFile.defaultPath
        let file = try HostsFile.load(path)
        var names: [String] = scan.hosts
        for group in scan.groups {
            guard let file else {
                throw CLIError("--hosts \(BerthError.quote(group)): there is no hosts file \(path)")
            }
            guard file.groups[group] != nil else {
                let known = file.groups.keys.sorted()
                throw CLIError(
                    "--hosts \(BerthError.quote(group)): \(path) has no such group"
                        + (known.isEmpty ? " (it defines none)" : " (groups: \(known.joined(separator: ", ")))"))
            }
            names += try file.expand(group: group)
        }
        var seen: Set<String> = []
        var hosts: [RemoteHost] = []
        for name in names where seen.insert(name).inserted {
            if let named = try file?.host(name, bus: scan.bus) {
                hosts.append(named)
            } else {
                do {
                    hosts.append(try RemoteHost.parse(name, bus: scan.bus))
                } catch let error as BerthError {
                    throw CLIError(error.message, code: 64)
                }
            }
        }
        return hosts
    }

    /// The options that make a berthctl reach `host` as resolved here, without the hosts file.
    static func hostArguments(_ host: RemoteHost, _ scan: Scan, timeout: Double?) -> [String] {
        var args = ["-H", host.spec]
        switch host.bus {
        case .user: args.append("--user")
        case .system: args.append("--system")
        case .address(let address): args += ["--remote-address", address]
        }
        if let config = scan.sshConfig { args += ["--ssh-config", config] }
        if let timeout { args += ["--host-timeout", String(timeout)] }
        return args
    }

    // MARK: - One host

    /// `berthctl up|down|doctor` run by ssh on the host, with the host's bus; its output and exit code are ours.
    static func onHost(_ host: RemoteHost, _ scan: Scan) async -> Int32 {
        var remote = ["berthctl"]
        switch host.bus {
        case .user: break
        case .system: remote.append("--system")
        case .address(let address): remote += ["--address", address]
        }
        if scan.json { remote.append("--json") }
        var options = BusOptions()
        options.sshConfig = scan.sshConfig
        options.hostTimeout = scan.hostTimeout
        let argv = host.sshArgv(remote + scan.rest, settings: RemoteSettings(options))
        guard let path = DetachedProcess.findExecutable("ssh") else {
            CLI.printError("cannot run `berthctl \(scan.command ?? "")` on \(host.name): ssh is not installed")
            return 1
        }
        let status = await ChildRun.passThrough(path, argv)
        // ssh's own failure (cannot connect, authentication) is 255.
        if status == 255 { CLI.printError("cannot reach \(host.name) over SSH (ssh exited with 255)") }
        return status
    }

    /// One host with `--json`: the same berthctl as a child, each JSON object it prints with `"host"` first.
    static func withHostInJSON(_ host: RemoteHost, _ arguments: [String]) async -> Int32 {
        guard let exe = FileSystem.executablePath() else { return 1 }
        return await ChildRun.filterStdout(exe, ["berthctl"] + arguments, environment: [childVariable + "=json"]) { line in
            addingHost(host.name, to: line)
        }
    }

    /// A line of JSON output with `"host":NAME` added to the object it is, or to each object of the array it is;
    /// any other line as it is.
    static func addingHost(_ host: String, to line: String) -> String {
        let field = JSON.quote("host") + ":" + JSON.quote(host)
        var out = ""
        var depth = 0
        var inString = false
        var escaped = false
        var pendingObject = false
        for c in line {
            if pendingObject {
                pendingObject = false
                out += c == "}" ? field : field + ","
            }
            out.append(c)
            if inString {
                if escaped {
                    escaped = false
                } else if c == "\\" {
                    escaped = true
                } else if c == "\"" {
                    inString = false
                }
                continue
            }
            switch c {
            case "\"": inString = true
            case "{":
                if depth == 0 || (depth == 1 && line.first == "[") { pendingObject = true }
                depth += 1
            case "[": depth += 1
            case "}", "]": depth -= 1
            default: break
            }
        }
        return out
    }

    // MARK: - Several hosts

    struct Row: Sendable {
        var host: String
        var ok: Bool
        var result: String
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func runMany(_ hosts: [RemoteHost], _ scan: Scan) async -> Int32 {
        guard let exe = FileSystem.executablePath() else {
            CLI.printError("cannot find berthctl's own executable to run it per host")
            return 1
        }
        let timeout = scan.hostTimeout ?? defaultTimeout
        let parallel = min(scan.parallel ?? defaultParallel, hosts.count)
        let interrupt = ChildRun.killGroupsOnInterrupt()
        defer { interrupt.cancel() }
        var rows = [Row?](repeating: nil, count: hosts.count)
        await withTaskGroup(of: (Int, Row).self) { group in
            var next = 0
            func start() {
                let index = next
                next += 1
                let host = hosts[index]
                let argv =
                    ["berthctl"] + hostArguments(host, scan, timeout: timeout) + (scan.json ? ["--json"] : [])
                    + scan.rest
                group.addTask {
                    let run = await ChildRun.capture(
                        exe, argv, environment: [childVariable + "=1"], timeout: .milliseconds(Int64(timeout * 1000)))
                    return (index, row(host, run, timeout: timeout))
                }
            }
            while next < parallel { start() }
            for await (index, row) in group {
                rows[index] = row
                if next < hosts.count { start() }
            }
        }
        let done = rows.compactMap { $0 }
        print(scan.json ? jsonText(done) : tableText(done), terminator: "")
        let failed = done.filter { !$0.ok }
        guard failed.isEmpty else {
            CLI.printError(
                "failed on \(failed.count) of \(done.count) hosts: \(failed.map(\.host).joined(separator: ", "))")
            return 1
        }
        return 0
    }

    static func row(_ host: RemoteHost, _ run: ChildRun.Captured, timeout: Double) -> Row {
        if run.timedOut {
            return Row(
                host: host.name, ok: false, result: "timeout", status: -1, stdout: run.stdout,
                stderr: "no answer within \(Self.seconds(timeout))")
        }
        var stderr = run.stderr
        // The per-host berthctl's own messages are "berthctl: ..."; the row already says who speaks.
        stderr = stderr.split(separator: "\n", omittingEmptySubsequences: true).map {
            $0.hasPrefix("berthctl: ") ? String($0.dropFirst(10)) : String($0)
        }.joined(separator: "\n")
        if run.status == 0 {
            return Row(host: host.name, ok: true, result: "ok", status: 0, stdout: run.stdout, stderr: stderr)
        }
        return Row(
            host: host.name, ok: false, result: "failed", status: run.status, stdout: run.stdout,
            stderr: stderr.isEmpty ? "exit \(run.status)" : stderr)
    }

    static func seconds(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value)) s" : "\(value) s"
    }

    /// HOST, RESULT, DETAIL: the detail is the error of a failed host, else the output; the lines of a longer
    /// output follow its row, indented.
    static func tableText(_ rows: [Row]) -> String {
        let hostWidth = max(4, rows.map(\.host.count).max() ?? 0)
        let resultWidth = max(6, rows.map(\.result.count).max() ?? 0)
        func pad(_ s: String, _ width: Int) -> String { s + String(repeating: " ", count: max(0, width - s.count)) }
        var text = pad("HOST", hostWidth) + "  " + pad("RESULT", resultWidth) + "  DETAIL\n"
        for row in rows {
            let detail = row.ok ? row.stdout : row.stderr
            let lines = detail.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                .reversed().drop { $0.isEmpty }.reversed()
            text += pad(row.host, hostWidth) + "  " + pad(row.result, resultWidth) + "  " + (lines.first ?? "")
            text = String(text.reversed().drop { $0 == " " }.reversed()) + "\n"
            for line in lines.dropFirst() {
                text += String(repeating: " ", count: hostWidth + resultWidth + 4) + line + "\n"
            }
        }
        return text
    }

    /// `[{"host":..,"result":"ok|failed|timeout","exit":N,"output":<the host's JSON, or its text>,"error":".."}]`.
    static func jsonText(_ rows: [Row]) -> String {
        let items = rows.map { row -> String in
            let output = row.stdout.trimmingSuffix { $0.isNewline }
            let outputJSON: String
            if output.isEmpty {
                outputJSON = "null"
            } else if !output.contains("\n"), (try? YAMLParser.parseJSON(output, source: "output")) != nil {
                outputJSON = output
            } else {
                outputJSON = JSON.quote(output)
            }
            let error = row.ok ? "" : row.stderr
            return "{"
                + [
                    JSON.quote("host") + ":" + JSON.quote(row.host),
                    JSON.quote("result") + ":" + JSON.quote(row.result),
                    JSON.quote("exit") + ":" + String(row.status), JSON.quote("output") + ":" + outputJSON,
                    JSON.quote("error") + ":" + JSON.quote(error),
                ].joined(separator: ",") + "}"
        }
        return "[" + items.joined(separator: ",") + "]\n"
    }
}

extension String {
    fileprivate func trimmingSuffix(while predicate: (Character) -> Bool) -> String {
        String(self.reversed().drop(while: predicate).reversed())
    }
}
