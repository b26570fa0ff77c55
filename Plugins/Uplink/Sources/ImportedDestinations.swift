import BerthKit
import Glibc

/// The destinations `ImportConfig` set: `<state dir>/uplink/imported.yaml`, one `destinations:` mapping with every
/// key of each destination (its route and its credentials file path included, never the credentials themselves),
/// written atomically (mode 0600) so that a `kill -9` or a power cut leaves either the old or the new set, never a
/// mix. Read back at start and merged with the config file's section (`UplinkConfig.merging`).
struct ImportedDestinations: Sendable {
    let path: String

    init(stateDirectory: String) { path = stateDirectory + "/imported.yaml" }

    /// The stored destinations, by name; one that no longer parses is left out and logged (the others still run).
    func load(defaultEvents: [String], logger: Logger) -> [DestinationConfig] {
        let root: ConfigNode?
        do {
            guard FileSystem.exists(path) else { return [] }
            root = try YAMLParser.parseFile(atPath: path)
        } catch {
            logger.error(
                "uplink: imported destinations in \"\(path)\" are not loaded: \(BerthError.wrapping(error).message)")
            return []
        }
        guard let root, let reader = try? ConfigReader(root, path: ""), let list = try? reader.reader("destinations")
        else { return [] }
        var result: [DestinationConfig] = []
        for entry in list.entries() {
            do {
                let d = try ConfigReader(entry.value, path: list.keyPath(entry.key))
                result.append(try DestinationConfig.parse(d, name: entry.key, events: defaultEvents))
                try d.finish()
            } catch {
                logger.error(
                    "uplink: imported destination \"\(entry.key)\" is not loaded: \(BerthError.wrapping(error).message)"
                )
            }
        }
        return result.sorted { $0.name < $1.name }
    }

    /// Replaces the stored set (an empty set removes the file).
    func save(_ destinations: [DestinationConfig]) throws {
        if destinations.isEmpty {
            if unlink(path) != 0 && errno != ENOENT {
                throw BerthError.failed("cannot remove \"\(path)\": \(systemErrorText(errno))")
            }
            FileSystem.syncDirectory(FileSystem.directoryName(path))
            return
        }
        let node = ConfigNode.map([
            ("destinations", .map(destinations.map { ($0.name, $0.node(credentials: true)) }))
        ])
        do {
            try FileSystem.writeAtomically(path, text: node.yamlText(), mode: 0o600)
        } catch let error as SystemError where error.errno == ENOSPC || error.errno == EDQUOT {
            throw BerthError(
                .storageFull,
                "uplink: the imported destinations cannot be stored in \"\(path)\": \(systemErrorText(error.errno))")
        }
    }
}
