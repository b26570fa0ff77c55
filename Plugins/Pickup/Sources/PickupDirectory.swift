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
    /// The folder's own names to pass over (fnmatch patterns, `ignore`), besides the editors' temporaries and the
    /// dotfiles pickup always ignores (`NameRules.isIgnored`).
    var ignore: [String]
    var origin: Origin

    init(
        name: String, path: String, target: String, patterns: [String]? = nil, recursive: Bool = false,
        undeployOnDelete: Bool = false, markers: Bool = false, ignore: [String] = [], origin: Origin
    ) {
        self.name = name
        self.path = path
        self.target = target
        self.patterns = patterns ?? NameRules.defaultPatterns(target: target)
        self.recursive = recursive || target == "instances" || target == "services"  // services: code subfolders
        self.undeployOnDelete = undeployOnDelete
        self.markers = markers
        self.ignore = ignore
        self.origin = origin
    }

    /// What becomes of a file in a pickup folder.
    enum Placement: Sendable, Equatable {
        /// It deploys to this target.
        case deploy(String)
        /// It sits in a target's folder but the target cannot take it: a failed deployment that says why.
        case unsupported(target: String, reason: String)
    }

    /// The target of a file at `relative` (a path inside the folder), or nil when that file deploys nowhere.
    func target(forRelative relative: String) -> String? {
        if case .deploy(let target) = placement(forRelative: relative) { return target }
        return nil
    }

    /// What a file at `relative` (a path inside the folder) is: deployed to a target, unsupported there (reported),
    /// or nil: passed over without a word (ignored names, files the folder's own patterns leave out, files in
    /// subfolders that are not the folder's own).
    func placement(forRelative relative: String) -> Placement? {
        if let code = serviceCodeTarget(forRelative: relative) { return .deploy(code) }  // PickupEngine+ServiceCode
        let parts = relative.split(separator: "/").map(String.init)
        guard let file = parts.last, !NameRules.isIgnored(file, extra: ignore) else { return nil }
        if parts.dropLast().contains(where: { $0.hasPrefix(".") }) { return nil }
        var fileTarget = target
        var direct = parts.count == 1
        if target == "instances" {
            if parts.count == 1 {
                return .unsupported(
                    target: "instances",
                    reason: "pickup does not deploy \(BerthError.quote(file)) from the instances folder itself: a "
                        + "bundle goes in the subfolder named after its application (instances/APP/\(file))")
            }
            guard parts.count == 2, NameRules.isPlainIdentifier(parts[0]) else { return nil }
            fileTarget = "instances/" + parts[0]
            direct = true
        }
        if NameRules.matches(file, patterns: patterns) {
            if let reason = TargetFiles.unsupportedFileReason(file, target: fileTarget) {
                return direct ? .unsupported(target: fileTarget, reason: reason) : nil
            }
            return .deploy(fileTarget)
        }
        // Patterns the folder chose itself filter what it deploys; with the target's own patterns a file there
        // that does not match is one the target cannot take: said, never silence.
        guard direct, patterns == NameRules.defaultPatterns(target: target),
            let reason = TargetFiles.unsupportedFileReason(file, target: fileTarget)
        else { return nil }
        return .unsupported(target: fileTarget, reason: reason)
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
        var ignore: [String] = []
        var flags: [String: Bool] = [:]
        for (key, value) in options {
            switch key {
            case "patterns":
                guard let items = value.items, items.allSatisfy({ $0.string != nil }) else {
                    throw BerthError.invalidArgument(
                        "pickup AddDirectory \"\(name)\": option patterns must be as, got \(value)")
                }
                patterns = items.compactMap(\.string)
            case "ignore":
                guard let items = value.items, items.allSatisfy({ $0.string != nil }) else {
                    throw BerthError.invalidArgument(
                        "pickup AddDirectory \"\(name)\": option ignore must be as, got \(value)")
                }
                ignore = items.compactMap(\.string)
            case "recursive", "undeploy_on_delete", "markers":
                guard let flag = value.bool else {
                    throw BerthError.invalidArgument(
                        "pickup AddDirectory \"\(name)\": option \(key) must be b, got \(value)")
                }
                flags[key] = flag
            default:
                throw BerthError.invalidArgument(
                    "pickup AddDirectory \"\(name)\": unknown option \"\(key)\" (known: patterns, ignore, "
                        + "recursive, undeploy_on_delete, markers)")
            }
        }
        return PickupDirectory(
            name: name, path: path, target: target, patterns: patterns, recursive: flags["recursive"] ?? false,
            undeployOnDelete: flags["undeploy_on_delete"] ?? false, markers: flags["markers"] ?? false, ignore: ignore,
            origin: .runtime)
    }
}
