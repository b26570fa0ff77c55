/// What the folder watcher knows: its folders, the roles of each inotify watch, the changes waiting for the next
/// batch and git's locks. Touched only on the watcher's worker (see `FolderWatcher`).
struct WatchTable {
    enum Role: Sendable, Equatable {
        /// A folder of pickup directory `directory`, at `relative` inside it ("" for its root).
        case folder(directory: String, relative: String)
        /// The parent of `directory`'s root: sees the root come back after it was deleted.
        case parent(directory: String)
        /// The git directory of the work tree `directory` lives in: sees git take and drop its index lock.
        case gitDirectory(directory: String)
    }

    var directories: [String: PickupDirectory] = [:]
    var roles: [Int32: [Role]] = [:]
    var pending: [String: PickupChange] = [:]
    var order: [String] = []
    /// Pickup directories with a change pending.
    var pendingDirectories: Set<String> = []
    /// Pickup directory → the git directory of its work tree.
    var gitDirectories: [String: String] = [:]
    /// Git directories whose `index.lock` exists: git is writing the work tree.
    var gitLocked: Set<String> = []
    var firstPendingAt: UInt64 = 0
    var lastEventAt: UInt64 = 0
    var timerArmed = false

    /// The folders watched, as "directory:relative" ("site:" for a root), sorted.
    var watchedFolders: [String] {
        roles.values.flatMap { roles in
            roles.compactMap { role -> String? in
                guard case .folder(let directory, let relative) = role else { return nil }
                return directory + ":" + relative
            }
        }.sorted()
    }

    /// Gives watch `wd` a role (once).
    mutating func add(_ role: Role, wd: Int32) {
        if !(roles[wd] ?? []).contains(role) { roles[wd, default: []].append(role) }
    }

    /// Drops the roles `matching` selects; a watch left without a role is removed.
    mutating func dropRoles(_ inotify: Inotify, matching: (Role) -> Bool) {
        for (wd, current) in roles {
            let kept = current.filter { !matching($0) }
            guard kept.count != current.count else { continue }
            if kept.isEmpty {
                inotify.removeWatch(wd)
                roles[wd] = nil
            } else {
                roles[wd] = kept
            }
        }
    }

    /// Drops pickup folder `name`'s watches of its folders: all of them, or those of `subfolder` and below it.
    mutating func dropFolderRoles(of name: String, subfolder: String? = nil, _ inotify: Inotify) {
        dropRoles(inotify) { role in
            guard case .folder(name, let relative) = role else { return false }
            guard let subfolder else { return true }
            return relative == subfolder || relative.hasPrefix(subfolder + "/")
        }
    }

    /// Forgets pickup folder `name`: its watches, its git directory and its pending changes.
    mutating func forget(_ name: String, _ inotify: Inotify) {
        directories[name] = nil
        if let gitDirectory = gitDirectories.removeValue(forKey: name), !gitDirectories.values.contains(gitDirectory) {
            gitLocked.remove(gitDirectory)
        }
        dropRoles(inotify) { role in
            switch role {
            case .folder(let d, _), .parent(let d), .gitDirectory(let d): d == name
            }
        }
        order.removeAll { pending[$0]?.directory == name }
        pending = pending.filter { $0.value.directory != name }
        pendingDirectories.remove(name)
    }

    /// Takes the pending changes, in the order they were first seen.
    mutating func takeBatch() -> [PickupChange] {
        let batch = order.compactMap { pending[$0] }
        pending = [:]
        order = []
        pendingDirectories = []
        return batch
    }
}
