import BerthKit
import Glibc

/// Content-addressed copies of deployed artifacts: `<root>/<sha256>/<name>`, written atomically, so a rollback
/// or a `config` import reads a stable copy and never the file someone is editing.
struct ArtifactStore: Sendable {
    let root: String

    init(root: String) throws {
        self.root = root
        try FileSystem.makeDirectories(root)
    }

    func path(sha256: String, name: String) -> String { root + "/" + sha256 + "/" + name }

    /// Stores `bytes` under their hash (once); returns the copy's path. Written to a temp file and renamed, so a
    /// copy is whole or absent after a `kill -9`; not fsynced (the log itself is not either, see DeploymentLog).
    @discardableResult
    func store(_ bytes: [UInt8], sha256: String, name: String) throws -> String {
        let file = path(sha256: sha256, name: name)
        if FileSystem.exists(file) { return file }
        try FileSystem.makeDirectories(root + "/" + sha256)
        // Not named after the artifact: a 255-byte name leaves no room. No artifact is named so (dotfiles and
        // *.tmp are ignored), and the engine stores one artifact at a time.
        let temp = root + "/" + sha256 + "/.store.tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SystemError("cannot create \"\(temp)\"", errno: errno) }
        do {
            try FileSystem.writeAll(fd, bytes, path: temp)
        } catch {
            close(fd)
            unlink(temp)
            throw error
        }
        close(fd)
        guard rename(temp, file) == 0 else {
            let code = errno
            unlink(temp)
            throw SystemError("cannot store \"\(file)\"", errno: code)
        }
        return file
    }

    /// A stored copy (nil when it is gone), at most `limit` bytes.
    func contents(sha256: String, name: String, limit: Int) throws -> [UInt8]? {
        try FileSystem.read(path(sha256: sha256, name: name), limit: limit)
    }

    /// Deletes the stored copies of `name` in these versions (and a version's folder once it is empty).
    func remove(name: String, versions: [String]) {
        for sha in versions {
            unlink(path(sha256: sha, name: name))
            rmdir(root + "/" + sha)
        }
    }
}
