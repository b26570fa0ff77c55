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
        do {
            try FileSystem.writeAtomically(path(name), text: yaml, mode: 0o600)
        } catch let error as SystemError where error.errno == ENOSPC || error.errno == EDQUOT {
            throw BerthError(
                .storageFull,
                "service \"\(name)\" is not defined: its spec cannot be stored in \"\(directory)\": \(systemErrorText(error.errno))")
        }
    }

    // MARK: - Desired state

    /// `<state dir>/wanted`: the services started by hand and not stopped by hand, one name a line.
    var wantedPath: String { FileSystem.directoryName(directory) + "/wanted" }

    func loadWanted() -> Set<String> {
        guard let text = try? FileSystem.readText(wantedPath) else { return [] }
        return Set(text.split(separator: "\n").map(String.init).filter { !$0.isEmpty })
    }

    func saveWanted(_ names: Set<String>) throws {
        try FileSystem.writeAtomically(wantedPath, text: names.sorted().map { $0 + "\n" }.joined(), mode: 0o600)
    }

    // MARK: - Logs

    /// The log files of service `name`: `NAME.log` and its rotations `NAME.log.N`.
    func logFiles(_ name: String) -> [String] {
        FileSystem.list(logDirectory).filter { file in
            file == name + ".log" || (file.hasPrefix(name + ".log.") && Int(file.dropFirst(name.count + 5)) != nil)
        }
    }

    /// Removes the logs of a service that no longer exists.
    func deleteLogs(_ name: String) {
        for file in logFiles(name) { unlink(logDirectory + "/" + file) }
    }

    /// Removes the logs of services not in `names` that were not written for `age` (they were left by services
    /// removed before `Remove` cleaned up after itself, or removed from the config file).
    func ageOutLogs(keeping names: Set<String>, age: Int = 7 * 86400, logger: Logger) {
        let now = time(nil)
        for file in FileSystem.list(logDirectory) {
            let parts = file.split(separator: ".log", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2 else { continue }
            let name = String(parts[0])
            guard !names.contains(name) else { continue }
            var info = stat()
            let path = logDirectory + "/" + file
            guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, now - info.st_mtim.tv_sec > age else {
                continue
            }
            if unlink(path) == 0 { logger.info("removed \"\(path)\": service \"\(name)\" no longer exists") }
        }
    }

    func delete(_ name: String) throws {
        if unlink(path(name)) != 0 && errno != ENOENT {
            throw BerthError.failed("cannot remove \"\(path(name))\": \(systemErrorText(errno))")
        }
        FileSystem.syncDirectory(directory)
    }
}
