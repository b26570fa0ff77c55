import BerthKit

/// How an instance is checked during a rolling deploy: `http:PATH` (a 2xx from http://127.0.0.1:$PORT/PATH),
/// `tcp` (the port accepts), or `exec:COMMAND` (run with `sh -c` in the instance folder, exit 0).
struct HealthSpec: Sendable, Equatable {
    enum Check: Sendable, Equatable {
        case http(path: String)
        case tcp
        case exec(command: String)
        /// No check: the instance only has to stay running for `minReady`.
        case none
    }
    var check: Check
    /// Give up when the check has not passed for this long after the start.
    var timeout: Duration
    /// Between two probes.
    var interval: Duration
    /// The check must keep passing for this long before the front end switches.
    var minReady: Duration

    static func parseCheck(_ text: String, what: String) throws -> Check {
        if text == "tcp" { return .tcp }
        if text == "none" { return .none }
        if text.hasPrefix("http:") {
            var path = String(text.dropFirst(5))
            if !path.hasPrefix("/") { path = "/" + path }
            guard !path.contains(where: { $0 == " " || $0 == "\r" || $0 == "\n" }) else {
                throw BerthError.invalidArgument("\(what) \"\(text)\" is not valid: the path may not contain spaces")
            }
            return .http(path: path)
        }
        if text.hasPrefix("exec:"), text.count > 5 { return .exec(command: String(text.dropFirst(5))) }
        throw BerthError.invalidArgument(
            "\(what) \"\(text)\" is not a health check: use http:PATH, tcp, exec:COMMAND or none")
    }

    var checkText: String {
        switch check {
        case .http(let path): "http:" + path
        case .tcp: "tcp"
        case .exec(let command): "exec:" + command
        case .none: "none"
        }
    }
}

/// A resource of an instance, as sarge's `services` had them.
enum InstanceResource: Sendable, Equatable {
    /// A free port from the pool: `PORT` and `services.<name>.port` in appcfg.json.
    case listen(name: String)
    /// A fresh folder for this instance only.
    case varFolder(name: String)
    /// A folder kept across the instances of the application.
    case persistentFolder(name: String)

    var name: String {
        switch self {
        case .listen(let n), .varFolder(let n), .persistentFolder(let n): n
        }
    }
}

/// An instance's configuration: the JSON given to `New` (or made by `Deploy`), checked strictly.
struct InstanceConfig: Sendable, Equatable {
    var application: String = ""
    var environment: [(String, String)] = []
    var prerun: String?
    /// nil: the plugin's default check.
    var health: HealthSpec?
    var resources: [InstanceResource] = []
    /// The JSON as given, kept in the record.
    var json: JSONText = .object([])

    static func == (a: InstanceConfig, b: InstanceConfig) -> Bool { a.json == b.json }

    var listens: Bool { resources.contains { if case .listen = $0 { true } else { false } } }

    /// Parses `text`; every problem is `InvalidArgument` naming the key and quoting the value.
    static func parse(_ text: String, defaults: HealthSpec) throws -> InstanceConfig {
        let node: ConfigNode
        do {
            node = try YAMLParser.parseJSON(text, source: Self.source)
        } catch let error as BerthError {
            throw BerthError.invalidArgument(
                "the instance config is not valid JSON: \(place(error.message, in: text))")
        }
        do {
            return try parse(node, defaults: defaults)
        } catch let error as BerthError where error.code == .invalidConfig {
            throw BerthError.invalidArgument("the instance config is not valid: \(place(error.message, in: text))")
        }
    }

    private static let source = "config_json"

    /// A parser message (`config_json:LINE: ...`) as the place in the JSON the user gave: nothing for a one-line
    /// JSON (the parser counts a line past its end), `line N` in a longer one, and "at its end" when the JSON
    /// stopped before it was complete (the parser says the line after the last).
    static func place(_ message: String, in text: String) -> String {
        let prefix = source + ":"
        guard message.hasPrefix(prefix) else { return message }
        let rest = message.dropFirst(prefix.count)
        let digits = rest.prefix { $0.isNumber }
        guard let line = Int(digits), rest.dropFirst(digits.count).hasPrefix(":") else { return message }
        let detail = String(rest.dropFirst(digits.count + 1).drop { $0 == " " })
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).count
        if text.hasSuffix("\n") { lines -= 1 }
        if line > max(lines, 1) { return "it ends before it is complete: \(detail)" }
        return lines <= 1 ? detail : "line \(line): \(detail)"
    }

    static func parse(_ node: ConfigNode, defaults: HealthSpec) throws -> InstanceConfig {
        var config = InstanceConfig()
        let reader = try ConfigReader(node, path: "")
        config.application = try reader.string("application_name") ?? ""
        if !config.application.isEmpty { try InstanceNames.checkApplication(config.application) }
        config.environment = try reader.stringMap("env") ?? []
        for (name, _) in config.environment where name.isEmpty || name.contains("=") {
            throw reader.error("env", "\"\(name)\" is not a variable name")
        }
        config.prerun = try reader.nonEmptyString("prerun")
        if let prerun = config.prerun, prerun.contains("..") || prerun.hasPrefix("/") {
            throw BerthError.invalidArgument("prerun \"\(prerun)\" must be a path inside the instance folder")
        }
        if let health = reader.node("health") { config.health = try parseHealth(health, defaults: defaults) }
        if let services = reader.node("services") { config.resources = try parseResources(services) }
        try reader.finish()
        config.json = JSONText.from(node)
        return config
    }

    /// The config with `spec` as its health check, in the JSON too (kept in the record and in `Config`).
    func with(health spec: HealthSpec) -> InstanceConfig {
        var copy = self
        copy.health = spec
        func text(_ d: Duration) -> JSONText {
            let (seconds, attoseconds) = d.components
            return .string("\(seconds * 1000 + attoseconds / 1_000_000_000_000_000)ms")
        }
        let health = JSONText.object([
            ("check", .string(spec.checkText)), ("timeout", text(spec.timeout)), ("interval", text(spec.interval)),
            ("min_ready", text(spec.minReady)),
        ])
        if case .object(var pairs) = json {
            pairs.removeAll { $0.0 == "health" }
            pairs.append(("health", health))
            copy.json = .object(pairs)
        }
        return copy
    }

    static func parseHealth(_ node: ConfigNode, defaults: HealthSpec) throws -> HealthSpec {
        if case .scalar(let text, _, _) = node {
            var spec = defaults
            spec.check = try HealthSpec.parseCheck(text, what: "health")
            return spec
        }
        let reader = try ConfigReader(node, path: "health")
        var spec = defaults
        if let check = try reader.string("check") {
            spec.check = try HealthSpec.parseCheck(check, what: "health.check")
        }
        spec.timeout = try reader.duration("timeout") ?? spec.timeout
        spec.interval = try reader.duration("interval") ?? spec.interval
        spec.minReady = try reader.duration("min_ready") ?? spec.minReady
        try reader.finish()
        if spec.interval <= .zero { throw reader.error("interval", "the interval must be more than zero") }
        return spec
    }

    static func parseResources(_ node: ConfigNode) throws -> [InstanceResource] {
        guard case .sequence(let items, _) = node else {
            throw BerthError.invalidArgument("services must be a list of {\"type\": ..., \"name\": ...}")
        }
        var result: [InstanceResource] = []
        for (position, item) in items.enumerated() {
            let reader = try ConfigReader(item, path: "services[\(position)]")
            let type = try reader.required("type") {
                try reader.oneOf($0, ["listen", "var-folder", "persistent-folder"])
            }
            let name = try reader.required("name", reader.nonEmptyString)
            try reader.finish()
            try InstanceNames.checkApplication(name, what: "services[\(position)].name")
            guard !result.contains(where: { $0.name == name }) else {
                throw BerthError.invalidArgument("services[\(position)].name \"\(name)\" is used twice")
            }
            switch type {
            case "listen":
                guard !result.contains(where: { if case .listen = $0 { true } else { false } }) else {
                    throw BerthError.invalidArgument("services[\(position)]: an instance has at most one listen port")
                }
                result.append(.listen(name: name))
            case "var-folder": result.append(.varFolder(name: name))
            default: result.append(.persistentFolder(name: name))
            }
        }
        return result
    }
}
