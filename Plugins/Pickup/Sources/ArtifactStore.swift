import BerthKit
import Glibc

/// Content-addressed copies of deployed artifacts: `<root>/<sha256>/<name>`, written atomically, so a rollback
/// or a `config` import reads a stable copy and never the file someone is editing. Also reads and hashes sources.
struct ArtifactStore: Sendable {
    let root: String

    init(root: String) throws {
        self.root = root
        try FileSystem.makeDirectories(root)
    }

    func path(sha256: String, name: String) -> String { root + "/" + sha256 + "/" + name }

    /// Stores `bytes` under their hash (once); returns the copy's path.
    @discardableResult
    func store(_ bytes: [UInt8], sha256: String, name: String) throws -> String {
        let file = path(sha256: sha256, name: name)
        if FileSystem.exists(file) { return file }
        try FileSystem.makeDirectories(root + "/" + sha256)
        try FileSystem.writeAtomically(file, bytes)
        return file
    }

    func contents(sha256: String, name: String) throws -> [UInt8]? { try FileSystem.read(path(sha256: sha256, name: name)) }

    /// Deletes every stored version not in `keep`.
    func prune(keeping keep: Set<String>) {
        for sha in FileSystem.list(root) where !keep.contains(sha) { try? FileSystem.removeTree(root + "/" + sha) }
    }

    /// Reads a whole source file (what is there now: pickup only reads after close-write or a rename).
    static func read(_ path: String) throws -> [UInt8] {
        guard let bytes = try FileSystem.read(path) else {
            throw BerthError.notFound("pickup cannot read \"\(path)\": it does not exist")
        }
        return bytes
    }
}
