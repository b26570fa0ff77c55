import BerthKit

/// One watched folder: where it is, what its files deploy to, and how it is watched.
struct PickupDirectory: Sendable, Equatable {
    enum Origin: String, Sendable { case builtin, config, runtime }

    var name: String
    var path: String
    /// services, config, files, instances/<app>, or `instances` (each subfolder `<app>` is `instances/<app>`).
    var target: String
    var patterns: [String]
    var recursive: Bool
    var undeployOnDelete: Bool
    var markers: Bool
    var origin: Origin

    init(
        name: String, path: String, target: String, patterns: [String]? = nil, recursive: Bool = false,
        undeployOnDelete: Bool = false, markers: Bool = false, origin: Origin
    ) {
        self.name = name
        self.path = path
        self.target = target
        self.patterns = patterns ?? NameRules.defaultPatterns(target: target)
        self.recursive = recursive || target == "instances" || target == "services"  // services: code subfolders
        self.undeployOnDelete = undeployOnDelete
        self.markers = markers
        self.origin = origin
    }

    /// The target of a file at `relative` (a path inside the folder), or nil when that file deploys nowhere.
    func target(forRelative relative: String) -> String? {
        if let code = serviceCodeTarget(forRelative: relative) { return code }  // PickupEngine+ServiceCode
        let parts = relative.split(separator: "/").map(String.init)
        guard let file = parts.last, !NameRules.isIgnored(file), NameRules.matches(file, patterns: patterns) else {
            return nil
        }
        if parts.dropLast().contains(where: { $0.hasPrefix(".") }) { return nil }
        if target == "instances" {
            guard parts.count == 2, NameRules.isPlainIdentifier(parts[0]) else { return nil }
            return "instances/" + parts[0]
        }
        return target
    }

    /// The folders pickup always watches under its state dir.
    static func builtins(stateDirectory: String) -> [PickupDirectory] {
        let root = stateDirectory
        return [
            PickupDirectory(name: "services", path: root + "/services", target: "services", origin: .builtin),
            PickupDirectory(name: "config", path: root + "/config", target: "config", origin: .builtin),
            PickupDirectory(name: "files", path: root + "/files", target: "files", origin: .builtin),
            PickupDirectory(name: "instances", path: root + "/instances", target: "instances", origin: .builtin),
        ]
    }

    /// Builds a folder from `AddDirectory` options (`patterns` as, `recursive` b, `undeploy_on_delete` b, `markers` b).
    static func fromOptions(name: String, path: String, target: String, options: [String: DBusValue]) throws
        -> PickupDirectory
    {
        var patterns: [String]? = nil
        var flags: [String: Bool] = [:]
        for (key, value) in options {
            switch key {
            case "patterns":
                guard let items = value.items, items.allSatisfy({ $0.string != nil }) else {
                    throw BerthError.invalidArgument(
                        "pickup AddDirectory \"\(name)\": option patterns must be as, got \(value)")
                }
                patterns = items.compactMap(\.string)
            case "recursive", "undeploy_on_delete", "markers":
                guard let flag = value.bool else {
                    throw BerthError.invalidArgument(
                        "pickup AddDirectory \"\(name)\": option \(key) must be b, got \(value)")
                }
                flags[key] = flag
            default:
                throw BerthError.invalidArgument(
                    "pickup AddDirectory \"\(name)\": unknown option \"\(key)\" (known: patterns, recursive, "
                        + "undeploy_on_delete, markers)")
            }
        }
        return PickupDirectory(
            name: name, path: path, target: target, patterns: patterns, recursive: flags["recursive"] ?? false,
            undeployOnDelete: flags["undeploy_on_delete"] ?? false, markers: flags["markers"] ?? false, origin: .runtime
        )
    }
}
