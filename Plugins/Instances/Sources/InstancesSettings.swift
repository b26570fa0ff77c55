import BerthKit

/// The plugin's config section `instances:` (strict; every key optional):
///
///     instances:
///       ports: 20000-20999          # the pool `listen` resources take free ports from
///       stop_timeout: 10s           # SIGTERM, then SIGKILL to the group
///       log_max_bytes: 10M          # rotate var/log/<id>.log at this size
///       log_keep: 5                 # rotated logs kept
///       keep: 0                     # old instances kept stopped after a deploy, for Rollback
///       health: { check: tcp, timeout: 30s, interval: 100ms, min_ready: 1s }
///       frontend:
///         file: /etc/nginx/berth/{{app}}.conf    # default: <state>/instances/var/frontend/{{app}}.conf
///         template: "upstream ..."               # or template_file: PATH; {{app}} {{port}} {{instance}}
///         reload: [nginx, -s, reload]            # [] for none
///         drain: 1s                              # after the reload, before the old instance stops
struct InstancesSettings: Sendable, Equatable {
    var portRange: ClosedRange<Int> = 20000...20999
    var stopTimeout: Duration = .seconds(10)
    var logMaxBytes = 10 << 20
    var logKeep = 5
    var keep = 0
    var health = HealthSpec(check: .tcp, timeout: .seconds(30), interval: .milliseconds(100), minReady: .seconds(1))
    var frontendFile: String?
    var template = InstancesSettings.defaultTemplate
    var reload: [String] = ["nginx", "-s", "reload"]
    var drain: Duration = .seconds(1)

    static let defaultTemplate = """
        # written by berth for application {{app}} (instance {{instance}}); do not edit
        upstream berth_{{app}} {
            server 127.0.0.1:{{port}};
        }

        """

    static func parse(_ node: ConfigNode?) throws -> InstancesSettings {
        var settings = InstancesSettings()
        guard let node else { return settings }
        let reader = try ConfigReader(node, path: "instances")
        if let ports = try reader.string("ports") {
            let parts = ports.split(separator: "-").map { Int($0.trimmingCharacters()) }
            guard parts.count == 2, let low = parts[0], let high = parts[1], 1 <= low, low <= high, high <= 65535 else {
                throw reader.error("ports", "\"\(ports)\" is not a port range (write LOW-HIGH, e.g. 20000-20999)")
            }
            settings.portRange = low...high
        }
        settings.stopTimeout = try reader.duration("stop_timeout") ?? settings.stopTimeout
        settings.logMaxBytes = Int(try reader.byteSize("log_max_bytes") ?? UInt64(settings.logMaxBytes))
        settings.logKeep = try reader.int("log_keep", in: 0...100) ?? settings.logKeep
        settings.keep = try reader.int("keep", in: 0...100) ?? settings.keep
        if let health = reader.node("health") {
            do {
                settings.health = try InstanceConfig.parseHealth(health, defaults: settings.health)
            } catch let error as BerthError where error.code == .invalidArgument {
                throw reader.error("health", error.message)
            }
        }
        if let frontend = try reader.reader("frontend") {
            settings.frontendFile = try frontend.nonEmptyString("file")
            let inline = try frontend.string("template")
            if let path = try frontend.nonEmptyString("template_file") {
                guard inline == nil else {
                    throw frontend.error("template_file", "give template or template_file, not both")
                }
                guard let text = try? FileSystem.readText(path) else {
                    throw frontend.error("template_file", "\"\(path)\" cannot be read")
                }
                settings.template = text
            } else if let inline {
                settings.template = inline
            }
            settings.reload = try frontend.stringList("reload") ?? settings.reload
            settings.drain = try frontend.duration("drain") ?? settings.drain
            try frontend.finish()
        }
        try reader.finish()
        return settings
    }
}

extension Substring {
    func trimmingCharacters() -> Substring {
        var s = self
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return s
    }
}
