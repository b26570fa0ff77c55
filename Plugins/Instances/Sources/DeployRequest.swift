import BerthKit

/// A checked `Deploy(application, source, options)` call. Options (`a{sv}`), all optional:
/// `health` (s: `http:/healthz`, `tcp`, `exec:CMD`, `none`), `timeout` (s: duration for the check to pass),
/// `min_ready` (s: duration it must keep passing), `keep` (u: old instances kept stopped for Rollback),
/// `config` (s: the new instance's JSON config; default: the current instance's, or one `listen` port).
struct DeployRequest: Sendable {
    enum Source: Sendable, Equatable {
        case folder(String)
        case archive(String)
    }
    var application: String
    var source: Source
    var sourcePath: String
    var health: String?
    var timeout: Duration?
    var minReady: Duration?
    var keep: Int?
    var configJSON: String?

    static func parse(application: String, source: String, options: [String: DBusValue]) throws -> DeployRequest {
        try InstanceNames.checkApplication(application, what: "application")
        guard !application.isEmpty else {
            throw BerthError.invalidArgument("deploy needs an application name, got \"\"")
        }
        guard source.hasPrefix("/") else {
            throw BerthError.invalidArgument("deploy source \"\(source)\" must be an absolute path")
        }
        let kind: Source
        if FileSystem.isDirectory(source) {
            kind = .folder(source)
        } else if FileSystem.exists(source) {
            guard source.hasSuffix(".tar") || source.hasSuffix(".tar.gz") || source.hasSuffix(".tgz") else {
                throw BerthError.invalidArgument(
                    "deploy source \"\(source)\" is neither a folder nor a .tar, .tar.gz or .tgz archive")
            }
            kind = .archive(source)
        } else {
            throw BerthError.notFound("deploy source \"\(source)\" does not exist")
        }
        var request = DeployRequest(application: application, source: kind, sourcePath: source)
        for (key, value) in options {
            switch key {
            case "health":
                guard let text = value.string else { throw wrongType(key, value, "a string") }
                _ = try HealthSpec.parseCheck(text, what: "option health")
                request.health = text
            case "timeout", "min_ready":
                guard let text = value.string, let duration = parseDuration(text) else {
                    throw wrongType(key, value, "a duration string such as \"5s\" or \"250ms\"")
                }
                if key == "timeout" { request.timeout = duration } else { request.minReady = duration }
            case "keep":
                guard let n = value.int64 ?? value.uint64.map(Int64.init), (0...100).contains(n) else {
                    throw wrongType(key, value, "a number from 0 to 100")
                }
                request.keep = Int(n)
            case "config":
                guard let text = value.string else { throw wrongType(key, value, "a JSON string") }
                request.configJSON = text
            default:
                throw BerthError.invalidArgument(
                    "unknown deploy option \"\(key)\" (known: config, health, keep, min_ready, timeout)")
            }
        }
        return request
    }

    private static func wrongType(_ key: String, _ value: DBusValue, _ expected: String) -> BerthError {
        .invalidArgument("deploy option \"\(key)\" must be \(expected), got \(value)")
    }

    /// `250ms`, `5s`, `2m`, or a bare number of seconds, read with the config parser's rules.
    static func parseDuration(_ text: String) -> Duration? {
        guard let node = try? YAMLParser.parse("d: \"\(text.filter { $0 != "\"" })\"", file: "option"),
            let reader = try? ConfigReader(node, path: "")
        else { return nil }
        return try? reader.duration("d")
    }
}
