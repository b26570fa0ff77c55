import BerthKit
import Glibc

/// One service as configured: what the supervisor runs (`spec`) plus what only the bus shows. Parsed strictly from
/// a `units.NAME` mapping of the `services:` section, a `Define` spec or a pickup drop; two definitions are equal
/// when a running service would not notice the difference, which is what `reload` compares.
struct ServiceDefinition: Sendable, Equatable {
    var name: String
    var description: String
    /// The static endpoint (a Pyro URI, host:port); `X_BERTH_ENDPOINT=` from the child overrides it while it runs.
    var endpoint: String
    var spec: ProcessSpec
    /// The mapping it came from, marks stripped: what `ExportConfig` writes back.
    var node: ConfigNode
    /// Services this one starts after (order only): when they are being started too, this one waits until they
    /// are ready (or failed).
    var after: [String] = []
    /// Services this one needs (order, and more): they are started with it and must become ready first; when one
    /// fails this one does not start, and when one stops this one stops (before it).
    var requires: [String] = []
    /// The signal a code deployment sends instead of a restart (nil: restart), `reload_signal: HUP`.
    var reloadSignal: Int32?
    /// Where `after` and `requires` were written, for the errors the whole set finds (unknown name, cycle).
    var origin = Origin()

    /// The marks of the dependency keys. Not part of equality: moving a unit in the file changes nothing.
    struct Origin: Sendable, Equatable {
        var path = ""
        var marks: [String: ConfigMark] = [:]
        static func == (_: Origin, _: Origin) -> Bool { true }

        /// `InvalidConfig` at the value of `key` (`after` or `requires`), in the reader's format.
        func error(_ key: String, _ problem: String) -> BerthError {
            .invalidConfig(at: marks[key] ?? .generated, path: ConfigReader.join(path, key), problem)
        }
    }

    /// Every service this one waits for: `requires` then `after`, without repeats.
    var dependencies: [String] {
        var seen: Set<String> = []
        return (requires + after).filter { seen.insert($0).inserted }
    }

    static let keys = [
        "exec", "env", "workdir", "description", "endpoint", "ready", "restart", "restart_delay", "restart_delay_max",
        "start_timeout", "stop_timeout", "start_limit_burst", "start_limit_interval", "log_max_bytes", "log_keep",
        "after", "requires", "reload_signal",
    ]

    /// The signals `reload_signal` accepts, by name without `SIG`.
    static let reloadSignals: [(String, Int32)] = [
        ("HUP", SIGHUP), ("USR1", SIGUSR1), ("USR2", SIGUSR2), ("INT", SIGINT), ("TERM", SIGTERM),
    ]

    /// Checks a service name: 1 to 64 of `A-Z a-z 0-9 . _ -`, not starting with a dot or a dash.
    static func checkName(_ name: String) throws {
        let allowed = name.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x2e || c == 0x5f
                || c == 0x2d
        }
        guard !name.isEmpty, name.utf8.count <= 64, allowed, !name.hasPrefix("."), !name.hasPrefix("-") else {
            throw BerthError.invalidArgument(
                "\"\(name)\" is not a valid service name (1 to 64 letters, digits, '.', '_' or '-', not starting with '.' or '-')"
            )
        }
    }

    /// Parses `node` (a mapping) at key path `path`; every problem is `InvalidConfig` naming file, line and key.
    static func parse(name: String, node: ConfigNode, path: String, logDirectory: String) throws -> ServiceDefinition {
        do { try checkName(name) } catch let error as BerthError {
            throw BerthError.invalidConfig(at: node.mark, path: path, error.message)
        }
        let reader = try ConfigReader(node, path: path)
        let argv = try execArgv(reader)
        var spec = ProcessSpec(name: name, argv: argv, logPath: logDirectory + "/" + name + ".log")
        spec.environment = Dictionary(try reader.stringMap("env") ?? [], uniquingKeysWith: { _, last in last })
        for key in spec.environment.keys where key.isEmpty || key.contains("=") {
            throw reader.error("env", "\"\(key)\" is not a valid environment variable name")
        }
        if let workdir = try reader.nonEmptyString("workdir") {
            guard workdir.hasPrefix("/") else {
                throw reader.error("workdir", "\"\(workdir)\" is not an absolute path")
            }
            guard FileSystem.isDirectory(workdir) else {
                throw reader.error("workdir", "the folder \"\(workdir)\" does not exist")
            }
            spec.workingDirectory = workdir
        }
        let description = try reader.string("description") ?? ""
        let endpoint = try reader.string("endpoint") ?? ""
        if let ready = try reader.nonEmptyString("ready") { spec.readiness = try readiness(ready, reader) }
        if let restart = try reader.oneOf("restart", RestartPolicy.allCases.map(\.rawValue)) {
            spec.restart = RestartPolicy(rawValue: restart)!
        }
        spec.restartDelay = try reader.duration("restart_delay") ?? spec.restartDelay
        spec.restartDelayMax = try reader.duration("restart_delay_max") ?? max(spec.restartDelayMax, spec.restartDelay)
        if spec.restartDelayMax < spec.restartDelay {
            throw reader.error(
                "restart_delay_max", "\(spec.restartDelayMax) is shorter than restart_delay (\(spec.restartDelay))")
        }
        spec.startTimeout = try reader.duration("start_timeout") ?? spec.startTimeout
        spec.stopTimeout = try reader.duration("stop_timeout") ?? spec.stopTimeout
        spec.startLimitBurst = try reader.int("start_limit_burst", in: 1...10_000) ?? spec.startLimitBurst
        spec.startLimitInterval = try reader.duration("start_limit_interval") ?? spec.startLimitInterval
        if spec.startLimitInterval == .zero {
            throw reader.error("start_limit_interval", "0 is not allowed; give a duration such as 10s")
        }
        if let bytes = try reader.byteSize("log_max_bytes") {
            guard bytes <= UInt64(Int.max) else { throw reader.error("log_max_bytes", "\(bytes) is too large") }
            spec.logMaxBytes = Int(bytes)
        }
        spec.logKeep = try reader.int("log_keep", in: 0...1000) ?? spec.logKeep
        var origin = Origin(path: path)
        var lists: [String: [String]] = [:]
        for key in ["after", "requires"] {
            // A list of names, or one name.
            var names: [String] = []
            if let value = reader.node(key) {
                origin.marks[key] = value.mark
                if let text = value.scalarText {
                    if !text.isEmpty { names = [text] }
                } else {
                    names = try reader.stringList(key) ?? []
                }
            }
            for other in names {
                do { try checkName(other) } catch let error as BerthError { throw reader.error(key, error.message) }
                if other == name { throw reader.error(key, "service \"\(name)\" cannot wait for itself") }
            }
            var seen: Set<String> = []
            lists[key] = names.filter { seen.insert($0).inserted }
        }
        var reloadSignal: Int32?
        if let signal = try reader.oneOf("reload_signal", reloadSignals.map(\.0)) {
            reloadSignal = reloadSignals.first { $0.0 == signal }!.1
        }
        try checkExecutable(spec, reader)
        try reader.finish()
        return ServiceDefinition(
            name: name, description: description, endpoint: endpoint, spec: spec, node: node.strippingMarks(),
            after: lists["after"] ?? [], requires: lists["requires"] ?? [], reloadSignal: reloadSignal, origin: origin)
    }

    /// Parses a spec given as YAML text (Define, pickup): a mapping with the keys of a `units` entry.
    static func parse(name: String, yaml: String, source: String, logDirectory: String) throws -> ServiceDefinition {
        try checkName(name)
        guard let node = try YAMLParser.parse(yaml, file: source) else {
            throw BerthError.invalidConfig("\(source): the spec of service \"\(name)\" is empty (give at least exec)")
        }
        return try parse(name: name, node: node, path: name, logDirectory: logDirectory)
    }

    /// `exec` is a list (argv) or a single string split on spaces (no quoting: use a list for arguments with spaces).
    private static func execArgv(_ reader: ConfigReader) throws -> [String] {
        let argv: [String]
        if case .scalar(let text, _, _)? = reader.node("exec") {
            argv = text.split(separator: " ").map(String.init)
        } else {
            argv = try reader.required("exec", reader.stringList)
        }
        guard let first = argv.first, !first.isEmpty else {
            throw reader.error(
                "exec", "the command is empty; give the program and its arguments, e.g. [python3, -m, lab]")
        }
        return argv
    }

    private static func readiness(_ text: String, _ reader: ConfigReader) throws -> Readiness {
        switch text {
        case "immediate": return .immediate
        case "notify": return .notify
        default:
            if text.hasPrefix("tcp:"), let port = UInt16(text.dropFirst(4)), port > 0 { return .tcp(port: port) }
            throw reader.error("ready", "\"\(text)\" is not immediate, notify or tcp:PORT (PORT 1 to 65535)")
        }
    }

    /// The program must exist: a path (relative ones from `workdir`) that is an executable file, or a bare name found
    /// in the service's `PATH` (its `env` PATH, else the daemon's).
    private static func checkExecutable(_ spec: ProcessSpec, _ reader: ConfigReader) throws {
        let program = spec.argv[0]
        if program.contains("/") {
            let full =
                program.hasPrefix("/") ? program : (spec.workingDirectory ?? FileSystem.absolute(".")) + "/" + program
            guard FileSystem.isExecutableFile(full) else {
                let why = FileSystem.exists(full) ? "is not an executable file" : "does not exist"
                throw reader.error("exec", "\"\(full)\" \(why)")
            }
            return
        }
        let searchPath = spec.environment["PATH"] ?? getenv("PATH").map { String(cString: $0) } ?? "/usr/bin:/bin"
        let found = searchPath.split(separator: ":").contains { FileSystem.isExecutableFile("\($0)/\(program)") }
        guard found else { throw reader.error("exec", "\"\(program)\" is not found in PATH (\(searchPath))") }
    }
}
