import BerthKit
import Glibc

/// The folder layout under the plugin's state folder (sarge's home folder):
///
///     <id>/                    the instance's code, with an executable `server`
///     var/log/<id>.log         its output (rotated: .1 ... .N)
///     var/run/<id>/appcfg.json what the app reads through BERTH_APPCFG
///     var/instances/<id>.json  the record (config, port, running state)
///     var/tmp/<id>/<name>      var-folder resources
///     var/data/<app>/<name>    persistent-folder resources, kept across instances
///     var/current/<app>        link to the instance the front end serves
///     var/frontend/<app>.conf  the default front-end file
struct InstanceStore: Sendable {
    let root: String

    func folder(_ id: String) -> String { root + "/" + id }
    func logPath(_ id: String) -> String { root + "/var/log/" + id + ".log" }
    func runFolder(_ id: String) -> String { root + "/var/run/" + id }
    func appConfigPath(_ id: String) -> String { runFolder(id) + "/appcfg.json" }
    func recordPath(_ id: String) -> String { root + "/var/instances/" + id + ".json" }
    func tempFolder(_ id: String) -> String { root + "/var/tmp/" + id }
    func persistentFolder(_ app: String, _ name: String) -> String { root + "/var/data/" + app + "/" + name }
    func currentLink(_ app: String) -> String { root + "/var/current/" + (app.isEmpty ? "_" : app) }
    func defaultFrontendFile(_ app: String) -> String { root + "/var/frontend/" + app + ".conf" }

    func prepare() throws {
        for dir in ["var/log", "var/run", "var/instances", "var/tmp", "var/data", "var/current", "var/frontend"] {
            try FileSystem.makeDirectories(root + "/" + dir)
        }
    }

    /// Makes a new instance folder with a fresh id: `mkdir` is atomic, so two creators never get the same id.
    func createFolder(application: String) throws -> String {
        for _ in 0..<1000 {
            let id = InstanceNames.candidate(application: application)
            if mkdir(folder(id), 0o755) == 0 { return id }
            if errno != EEXIST {
                throw SystemError("cannot create the instance folder \"\(folder(id))\"", errno: errno)
            }
        }
        throw BerthError.failed("no free instance id for application \"\(application)\" after 1000 tries")
    }

    func write(_ record: InstanceRecord) throws {
        try FileSystem.writeAtomically(recordPath(record.id), text: record.json.text + "\n")
    }

    /// Every record on disk; unreadable ones are reported and skipped.
    func loadAll(defaults: HealthSpec, logger: Logger) -> [InstanceRecord] {
        var records: [InstanceRecord] = []
        for name in FileSystem.list(root + "/var/instances") where name.hasSuffix(".json") && !name.hasPrefix(".") {
            let path = root + "/var/instances/" + name
            do {
                guard let text = try FileSystem.readText(path) else { continue }
                records.append(try InstanceRecord.parse(text, file: path, defaults: defaults))
            } catch {
                logger.error("instance record \"\(path)\" is unreadable and was skipped: \(error)")
            }
        }
        return records
    }

    /// Folders that look like instances but have no record: a `New` that crashed before its record was written.
    func orphanFolders(known: Set<String>) -> [String] {
        FileSystem.list(root).filter { name in
            name != "var" && !known.contains(name) && InstanceNames.isWellFormed(name)
                && FileSystem.isDirectory(folder(name))
        }
    }

    /// Removes everything of an instance except its record (removed last, by the caller).
    func removeFiles(_ id: String) throws {
        try FileSystem.removeTree(folder(id))
        try FileSystem.removeTree(runFolder(id))
        try FileSystem.removeTree(tempFolder(id))
        for suffix in [""] + (1...100).map({ ".\($0)" }) {
            let path = logPath(id) + suffix
            if !FileSystem.exists(path) && !suffix.isEmpty { break }
            try FileSystem.removeTree(path)
        }
    }

    func removeRecord(_ id: String) throws {
        if unlink(recordPath(id)) != 0 && errno != ENOENT {
            throw SystemError("cannot remove \"\(recordPath(id))\"", errno: errno)
        }
        FileSystem.syncDirectory(root + "/var/instances")
    }

    /// The id the application's `current` link points at, or nil.
    func current(_ app: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink(currentLink(app), &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        let target = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return FileSystem.baseName(target)
    }

    /// Points the application's `current` link at `id` atomically (a new link renamed over the old one).
    func setCurrent(_ app: String, _ id: String?) throws {
        let link = currentLink(app)
        guard let id else {
            if unlink(link) != 0 && errno != ENOENT { throw SystemError("cannot remove \"\(link)\"", errno: errno) }
            return
        }
        let temp = link + ".new"
        unlink(temp)
        if symlink(folder(id), temp) != 0 { throw SystemError("cannot create the link \"\(temp)\"", errno: errno) }
        if rename(temp, link) != 0 { throw SystemError("cannot rename \"\(temp)\" to \"\(link)\"", errno: errno) }
        FileSystem.syncDirectory(FileSystem.directoryName(link))
    }
}
