import BerthKit

/// Finds the git directory of the work tree a pickup folder lives in, so that the watcher can see git hold its
/// index lock: `git checkout`, `merge` and `pull` create `index.lock` before they write the first file of the
/// work tree and rename it to `index` after the last. While it exists, the files arriving are one operation.
enum GitWorkTree {
    /// The lock git holds while it updates the work tree.
    static let indexLock = "index.lock"

    /// The git directory (the one holding `index`) for `path` or its nearest ancestor with a `.git`: a folder, or a
    /// file `gitdir: PATH` (linked work trees, submodules). Nil outside a work tree.
    static func gitDirectory(containing path: String) -> String? {
        var current = FileSystem.absolute(path)
        while true {
            let dotGit = (current == "/" ? "" : current) + "/.git"
            if FileSystem.isDirectory(dotGit) { return dotGit }
            if FileSystem.exists(dotGit), let target = gitFileTarget(dotGit, base: current) { return target }
            if current == "/" { return nil }
            current = FileSystem.directoryName(current)
        }
    }

    /// `gitdir: PATH` in a `.git` file, resolved against the folder holding it.
    static func gitFileTarget(_ file: String, base: String) -> String? {
        // One line: a FIFO or a device named .git is refused at once, a large file is no git file.
        guard let text = try? FileSystem.readText(file, limit: 64 << 10) else { return nil }
        let prefix = "gitdir:"
        guard let line = text.split(separator: "\n").first, line.hasPrefix(prefix) else { return nil }
        let target = line.dropFirst(prefix.count).trimmingCharacters(in: " \t\r")
        guard !target.isEmpty else { return nil }
        let resolved = target.hasPrefix("/") ? target : (base == "/" ? "" : base) + "/" + target
        return FileSystem.isDirectory(resolved) ? resolved : nil
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var slice = self[...]
        while let first = slice.first, set.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, set.contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}
