import BerthKit
import Glibc

/// Services defined at run time (`Define`, a pickup drop, `ImportConfig`): one file `NAME.yaml` per service in
/// `<state dir>/defined/`, holding the spec exactly as given, written atomically so a `kill -9` leaves either the
/// old or the new spec. They are read back at start, so they outlive the daemon.
struct DefinedStore: Sendable {
    let directory: String
    let logDirectory: String

    init(stateDirectory: String) throws {
        directory = stateDirectory + "/defined"
        logDirectory = stateDirectory + "/logs"
        try FileSystem.makeDirectories(directory, mode: 0o700)
        try FileSystem.makeDirectories(logDirectory, mode: 0o700)
    }

    func path(_ name: String) -> String { directory + "/" + name + ".yaml" }

    /// Every stored definition; a file that no longer parses (a binary removed since) is skipped and reported.
    func loadAll(logger: Logger) -> [(ServiceDefinition, String)] {
        var result: [(ServiceDefinition, String)] = []
        for file in FileSystem.list(directory).sorted() where file.hasSuffix(".yaml") {
            let name = String(file.dropLast(5))
            do {
                guard let text = try FileSystem.readText(path(name)) else { continue }
                let definition = try ServiceDefinition.parse(
                    name: name, yaml: text, source: path(name), logDirectory: logDirectory)
                result.append((definition, text))
            } catch {
                logger.error("defined service \"\(name)\" is not loaded: \(BerthError.wrapping(error).message)")
            }
        }
        return result
    }

    func save(_ name: String, yaml: String) throws {
        try FileSystem.writeAtomically(path(name), text: yaml, mode: 0o600)
    }

    func delete(_ name: String) throws {
        if unlink(path(name)) != 0 && errno != ENOENT {
            throw BerthError.failed("cannot remove \"\(path(name))\": \(systemErrorText(errno))")
        }
        FileSystem.syncDirectory(directory)
    }
}
