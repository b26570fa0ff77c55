import BerthKit

/// The `pickup:` section:
///
///     pickup:
///       keep_versions: 5          # copies kept per artifact for Rollback
///       settle: 5ms               # quiet time before a burst of changes is deployed
///       markers: false            # NAME.deployed / NAME.failed beside sources in the built-in folders
///       max_upload_bytes: 16M     # the largest Deploy (bytes through the bus); larger: DeployFd
///       max_artifact_bytes: 256M  # the largest artifact (from a folder, DeployFile, Rollback or DeployFd)
///       dirs:
///         NAME: {path: /abs/path, target: services, patterns: ["*.yaml"], recursive: false,
///                undeploy_on_delete: false, markers: false, ignore: ["*.bak"]}
///         NAME: {git: {url: URL, branch: main, interval: 60s}, target: services}   # instead of path
struct PickupConfig: Sendable, Equatable {
    var keepVersions = 5
    var settle: Duration = .milliseconds(5)
    var markers = false
    var maxUploadBytes = PickupConfig.defaultMaxUploadBytes
    /// The largest artifact pickup reads or accepts: a bigger file is a failed deployment naming its size and
    /// this limit, never a read of it into memory.
    var maxArtifactBytes = PickupConfig.defaultMaxArtifactBytes
    var dirs: [PickupDirectory] = []
    /// The folders fed by git, by name.
    var git: [String: GitSource] = [:]

    static func parse(_ node: ConfigNode?, path: String = "pickup") throws -> PickupConfig {
        var config = PickupConfig()
        guard let node else { return config }
        let reader = try ConfigReader(node, path: path)
        config.keepVersions = try reader.int("keep_versions", in: 1...1000) ?? config.keepVersions
        if let settle = try reader.duration("settle") {
            guard settle <= .seconds(10) else { throw reader.error("settle", "must be at most 10s, got \(settle)") }
            config.settle = settle
        }
        config.markers = try reader.bool("markers") ?? false
        config.maxUploadBytes = try size(reader, "max_upload_bytes") ?? config.maxUploadBytes
        config.maxArtifactBytes = try size(reader, "max_artifact_bytes") ?? config.maxArtifactBytes
        if let dirs = try reader.reader("dirs") {
            for entry in dirs.entries() {
                let dir = try ConfigReader(entry.value, path: dirs.keyPath(entry.key))
                guard NameRules.isPlainIdentifier(entry.key),
                    !["services", "config", "files", "instances"].contains(entry.key)
                else {
                    throw dirs.error(
                        entry.key, "a folder name must be letters, digits, - _ . and not a built-in folder's name")
                }
                let git = try GitSource.parse(dir)  // a folder fed by git: its path is its clone (GitSource.swift)
                if git != nil && dir.has("path") { throw dir.error("path", "a git folder's path is its clone; give git or path") }
                let folder = try git.map { _ in GitSource.unresolvedPath(entry.key) } ?? dir.required("path", dir.nonEmptyString)
                config.git[entry.key] = git
                guard folder.hasPrefix("/") else {
                    throw dir.error("path", "must be an absolute path, got \"\(folder)\"")
                }
                let target = try dir.required("target", dir.nonEmptyString)
                do { try NameRules.checkTarget(target, allowBareInstances: true) } catch let error as BerthError {
                    throw dir.error("target", error.message)
                }
                config.dirs.append(
                    PickupDirectory(
                        name: entry.key, path: folder, target: target, patterns: try dir.stringList("patterns"),
                        recursive: try dir.bool("recursive") ?? false,
                        undeployOnDelete: try dir.bool("undeploy_on_delete") ?? false,
                        markers: try dir.bool("markers") ?? false, ignore: try dir.stringList("ignore") ?? [],
                        origin: .config))
                try dir.finish()
            }
            try dirs.finish()
        }
        try reader.finish()
        return config
    }

    static let defaultMaxUploadBytes = 16 << 20
    static let defaultMaxArtifactBytes = 256 << 20

    /// A size limit: at least 1 byte, at most 1 TiB.
    private static func size(_ reader: ConfigReader, _ key: String) throws -> Int? {
        guard let bytes = try reader.byteSize(key) else { return nil }
        guard bytes >= 1, bytes <= 1 << 40 else { throw reader.error(key, "must be 1 byte to 1T, got \(bytes) bytes") }
        return Int(bytes)
    }

    /// Folders as a `pickup:` section (ExportConfig): what `parse` reads back into equal folders.
    static func node(dirs: [PickupDirectory]) -> ConfigNode {
        .map([
            (
                "dirs",
                .map(
                    dirs.map { d in
                        (
                            d.name,
                            .map([
                                ("path", .string(d.path)), ("target", .string(d.target)),
                                ("patterns", .list(d.patterns.map(ConfigNode.string))),
                                ("recursive", .bool(d.recursive)), ("undeploy_on_delete", .bool(d.undeployOnDelete)),
                                ("markers", .bool(d.markers)),
                            ] + (d.ignore.isEmpty ? [] : [("ignore", .list(d.ignore.map(ConfigNode.string)))]))
                        )
                    })
            )
        ])
    }

    /// Keys of the section that only the config file sets (an import refuses them).
    static let fileOnlyKeys = ["keep_versions", "settle", "markers", "max_upload_bytes", "max_artifact_bytes"]
}
