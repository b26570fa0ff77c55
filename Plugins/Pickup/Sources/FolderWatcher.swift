import BerthKit
import Glibc
import Synchronization

/// A change pickup saw in a folder (or found by a rescan).
struct PickupChange: Sendable, Equatable {
    enum Kind: String, Sendable { case changed, removed }
    var directory: String
    var path: String
    var relative: String
    var kind: Kind
    /// Wall-clock time the change was seen (µs): a deployment done after it already has this content.
    var detectedUSec: UInt64
    /// From a rescan: deploy only when the content differs from what is deployed.
    var fromRescan = false
}

/// Watches pickup folders with inotify on the process-wide epoll thread. Events are coalesced per path until the
/// folders are quiet for `settle` (at most `maxDelay`), then handed over as one batch: a file written twice in a
/// burst is one change. A folder inside a git work tree also watches its git directory: while git holds
/// `index.lock` (a checkout, merge or pull writing the tree) the batch waits for git to finish, so the whole
/// operation is one batch however long git pauses between files (up to `gitQuiet` without any event, which also
/// bounds the wait behind a stale lock, and `gitMaxDelay` in all). Runs its handlers on the epoll thread.
final class FolderWatcher: Sendable {
    enum Role: Sendable, Equatable {
        /// A folder of pickup directory `directory`, at `relative` inside it ("" for its root).
        case folder(directory: String, relative: String)
        /// The parent of `directory`'s root: sees the root come back after it was deleted.
        case parent(directory: String)
        /// The git directory of the work tree `directory` lives in: sees git take and drop its index lock.
        case gitDirectory(directory: String)
    }

    struct State {
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
    }

    let inotify: Inotify
    let settle: Duration
    let maxDelay: Duration
    let gitQuiet: Duration
    let gitMaxDelay: Duration
    private let state = Mutex(State())
    /// The folders by name, apart from `state`: its lock is held while a folder tree is walked and watched, and
    /// readers on the cooperative pool (the bus methods, `Directories`) must never wait behind a walk.
    /// A name claimed for an add under way is `ready == false`: taken, but not yet a folder anyone can see or remove.
    private let catalog = Mutex<[String: (directory: PickupDirectory, ready: Bool)]>([:])
    private let token = Mutex<FDWatcher.Token?>(nil)
    private let onBatch: @Sendable ([PickupChange]) -> Void
    private let onOverflow: @Sendable () -> Void

    init(
        settle: Duration, maxDelay: Duration = .seconds(1), gitQuiet: Duration = .seconds(2),
        gitMaxDelay: Duration = .seconds(60), onBatch: @escaping @Sendable ([PickupChange]) -> Void,
        onOverflow: @escaping @Sendable () -> Void
    ) throws {
        inotify = try Inotify()
        self.settle = settle
        self.maxDelay = maxDelay
        self.gitQuiet = gitQuiet
        self.gitMaxDelay = gitMaxDelay
        self.onBatch = onBatch
        self.onOverflow = onOverflow
    }

    func start() throws {
        let watch = try FDWatcher.shared.watch(fd: inotify.fd) { [weak self] _ in
            guard let self else { return }
            self.handle(self.inotify.readEvents())
        }
        token.withLock { $0 = watch }
    }

    func stop() {
        if let watch = token.withLock({ t -> FDWatcher.Token? in
            defer { t = nil }
            return t
        }) {
            FDWatcher.shared.unwatch(watch, fd: inotify.fd)
        }
    }

    var directories: [PickupDirectory] { catalog.withLock { $0.values.filter(\.ready).map(\.directory) } }

    /// The folders watched, as "directory:relative" ("site:" for a root), sorted.
    var watchedFolders: [String] {
        state.withLock { state in
            state.roles.values.flatMap { roles in
                roles.compactMap { role -> String? in
                    guard case .folder(let directory, let relative) = role else { return nil }
                    return directory + ":" + relative
                }
            }.sorted()
        }
    }

    /// Reserves `directory`'s name before it is added; false when a folder has that name already.
    func claim(_ directory: PickupDirectory) -> Bool {
        catalog.withLock { catalog in
            guard catalog[directory.name] == nil else { return false }
            catalog[directory.name] = (directory, false)
            return true
        }
    }

    /// Starts watching a folder (and its parent, so that a deleted folder that comes back is watched again).
    /// Blocks while it walks the folder's tree: not for the cooperative pool.
    func add(_ directory: PickupDirectory) {
        catalog.withLock { $0[directory.name] = (directory, true) }
        state.withLock { state in
            state.directories[directory.name] = directory
            attachParent(directory, &state)
            attachGitDirectory(directory, &state)
            _ = attachTree(directory, relative: "", &state)
        }
    }

    /// Blocks while a walk holds the watch state: not for the cooperative pool.
    func remove(_ name: String) {
        // The name is free again only once its watches are gone (an add of it may follow at once).
        defer { catalog.withLock { $0[name] = nil } }
        state.withLock { state in
            state.directories[name] = nil
            if let gitDirectory = state.gitDirectories.removeValue(forKey: name),
                !state.gitDirectories.values.contains(gitDirectory)
            {
                state.gitLocked.remove(gitDirectory)
            }
            dropRoles(&state) { role in
                switch role {
                case .folder(let d, _), .parent(let d), .gitDirectory(let d): d == name
                }
            }
            state.order.removeAll { state.pending[$0]?.directory == name }
            state.pending = state.pending.filter { $0.value.directory != name }
            state.pendingDirectories.remove(name)
        }
    }

    /// Every file in a folder that deploys somewhere, as changes to compare with the log (a rescan).
    static func scan(_ directory: PickupDirectory) -> [PickupChange] {
        let now = realtimeUSec()
        return Self.files(in: directory.path, relative: "", recursive: directory.recursive).compactMap { relative in
            guard directory.target(forRelative: relative) != nil else { return nil }
            return PickupChange(
                directory: directory.name, path: directory.path + "/" + relative, relative: relative, kind: .changed,
                detectedUSec: now, fromRescan: true)
        }
    }

    /// Handles events read from inotify (or given by a test, e.g. an overflow).
    func handle(_ events: [InotifyEvent]) {
        var overflow = false
        state.withLock { state in
            for event in events {
                if event.has(InotifyEvent.overflow) {
                    overflow = true
                    continue
                }
                for role in state.roles[event.wd] ?? [] { apply(event, role: role, &state) }
                if event.has(InotifyEvent.ignored) { state.roles[event.wd] = nil }
            }
            guard overflow else { return }
            // Events were lost, folder creations and moves among them: watch every folder afresh, then rescan.
            for directory in state.directories.values {
                dropFolderRoles(of: directory.name, &state)
                attachParent(directory, &state)
                _ = attachTree(directory, relative: "", &state)
            }
        }
        if overflow { onOverflow() }
    }

    /// Drops pickup folder `name`'s watches of its folders: all of them, or those of `subfolder` and below it.
    private func dropFolderRoles(of name: String, subfolder: String? = nil, _ state: inout State) {
        dropRoles(&state) { role in
            guard case .folder(name, let relative) = role else { return false }
            guard let subfolder else { return true }
            return relative == subfolder || relative.hasPrefix(subfolder + "/")
        }
    }

    /// Drops the roles `matching` selects; a watch left without a role is removed.
    private func dropRoles(_ state: inout State, matching: (Role) -> Bool) {
        for (wd, roles) in state.roles {
            let kept = roles.filter { !matching($0) }
            guard kept.count != roles.count else { continue }
            if kept.isEmpty {
                inotify.removeWatch(wd)
                state.roles[wd] = nil
            } else {
                state.roles[wd] = kept
            }
        }
    }

    private func apply(_ event: InotifyEvent, role: Role, _ state: inout State) {
        switch role {
        case .gitDirectory(let name):
            guard event.name == GitWorkTree.indexLock, let gitDirectory = state.gitDirectories[name] else { return }
            if event.has(InotifyEvent.create | InotifyEvent.movedTo) {
                state.gitLocked.insert(gitDirectory)
            } else if event.has(InotifyEvent.delete | InotifyEvent.movedFrom) {
                state.gitLocked.remove(gitDirectory)
                // Git is done: what it wrote deploys one settle from now.
                if !state.pending.isEmpty { state.lastEventAt = monotonicUSec() }
            }
        case .parent(let name):
            guard let directory = state.directories[name], event.name == FileSystem.baseName(directory.path),
                event.has(InotifyEvent.isDirectory), event.has(InotifyEvent.create | InotifyEvent.movedTo)
            else { return }
            for relative in attachTree(directory, relative: "", &state) { note(directory, relative, .changed, &state) }
        case .folder(let name, let relative):
            guard let directory = state.directories[name] else { return }
            if event.has(InotifyEvent.moveSelf) && relative.isEmpty {
                // The root moved away: its watches would follow it. Drop them (and only this folder's: a watch can
                // serve another pickup folder too); the parent sees a new root appear.
                dropFolderRoles(of: name, &state)
                return
            }
            guard !event.name.isEmpty else { return }
            let child = relative.isEmpty ? event.name : relative + "/" + event.name
            if event.has(InotifyEvent.isDirectory) {
                if event.has(InotifyEvent.movedFrom) {
                    // A subfolder moved away (or renamed): its watches would follow it under their old names.
                    dropFolderRoles(of: name, subfolder: child, &state)
                }
                if directory.recursive, !event.name.hasPrefix("."),
                    event.has(InotifyEvent.create | InotifyEvent.movedTo)
                {
                    for file in attachTree(directory, relative: child, &state) {
                        note(directory, file, .changed, &state)
                    }
                }
                return
            }
            if event.has(InotifyEvent.closeWrite | InotifyEvent.movedTo) {
                note(directory, child, .changed, &state)
            } else if directory.undeployOnDelete, event.has(InotifyEvent.delete | InotifyEvent.movedFrom) {
                note(directory, child, .removed, &state)
            }
        }
    }

    /// Records a change for the next batch and makes sure the settle timer runs.
    private func note(_ directory: PickupDirectory, _ relative: String, _ kind: PickupChange.Kind, _ state: inout State)
    {
        guard directory.target(forRelative: relative) != nil else { return }
        let path = directory.path + "/" + relative
        let now = monotonicUSec()
        if state.pending.isEmpty { state.firstPendingAt = now }
        state.lastEventAt = now
        if state.pending[path] == nil { state.order.append(path) }
        state.pendingDirectories.insert(directory.name)
        state.pending[path] = PickupChange(
            directory: directory.name, path: path, relative: relative, kind: kind, detectedUSec: realtimeUSec())
        if !state.timerArmed {
            state.timerArmed = true
            FDWatcher.shared.after(settle) { [weak self] in self?.settleTimer() }
        }
    }

    private func settleTimer() {
        let batch = state.withLock { state -> [PickupChange] in
            let now = monotonicUSec()
            let quiet = now &- state.lastEventAt
            // Git writing the work tree of a folder with pending changes: wait for it (looking again every settle).
            let gitBusy =
                !state.gitLocked.isEmpty
                && state.pendingDirectories.contains { state.gitDirectories[$0].map(state.gitLocked.contains) ?? false }
            let settleUSec = Self.microseconds(settle)
            let (quietNeeded, maxUSec) =
                gitBusy
                ? (Self.microseconds(gitQuiet), Self.microseconds(gitMaxDelay))
                : (settleUSec, Self.microseconds(maxDelay))
            if !state.pending.isEmpty && quiet < quietNeeded && now &- state.firstPendingAt < maxUSec {
                let wait = gitBusy ? max(settleUSec, 1000) : settleUSec - quiet
                FDWatcher.shared.after(.microseconds(Int64(wait))) { [weak self] in self?.settleTimer() }
                return []
            }
            state.timerArmed = false
            let batch = state.order.compactMap { state.pending[$0] }
            state.pending = [:]
            state.order = []
            state.pendingDirectories = []
            return batch
        }
        if !batch.isEmpty { onBatch(batch) }
    }

    private static func microseconds(_ duration: Duration) -> UInt64 {
        UInt64(duration.components.seconds) * 1_000_000 + UInt64(duration.components.attoseconds / 1_000_000_000_000)
    }

    /// Watches the git directory of the work tree the folder lives in (if any) for git's index lock.
    private func attachGitDirectory(_ directory: PickupDirectory, _ state: inout State) {
        guard let gitDirectory = GitWorkTree.gitDirectory(containing: directory.path),
            let wd = try? inotify.addWatch(gitDirectory)
        else { return }
        state.gitDirectories[directory.name] = gitDirectory
        if FileSystem.exists(gitDirectory + "/" + GitWorkTree.indexLock) { state.gitLocked.insert(gitDirectory) }
        let role = Role.gitDirectory(directory: directory.name)
        if !(state.roles[wd] ?? []).contains(role) { state.roles[wd, default: []].append(role) }
    }

    private func attachParent(_ directory: PickupDirectory, _ state: inout State) {
        let parent = FileSystem.directoryName(directory.path)
        guard let wd = try? inotify.addWatch(parent) else { return }
        let role = Role.parent(directory: directory.name)
        if !(state.roles[wd] ?? []).contains(role) { state.roles[wd, default: []].append(role) }
    }

    /// Watches a folder (and, for a recursive directory, every subfolder but dot-folders); returns the files found
    /// in it, relative to the directory's root, so that files that arrived before the watch are not missed.
    private func attachTree(_ directory: PickupDirectory, relative: String, _ state: inout State) -> [String] {
        let path = relative.isEmpty ? directory.path : directory.path + "/" + relative
        guard let wd = try? inotify.addWatch(path) else { return [] }
        let role = Role.folder(directory: directory.name, relative: relative)
        if !(state.roles[wd] ?? []).contains(role) { state.roles[wd, default: []].append(role) }
        var files: [String] = []
        for name in FileSystem.list(path) {
            let child = relative.isEmpty ? name : relative + "/" + name
            if Self.isFolder(path + "/" + name) {
                if directory.recursive && !name.hasPrefix(".") {
                    files += attachTree(directory, relative: child, &state)
                }
            } else {
                files.append(child)
            }
        }
        return files
    }

    /// Files under `path` (relative paths), descending into subfolders (not dot-folders) when `recursive`.
    static func files(in path: String, relative: String, recursive: Bool) -> [String] {
        var found: [String] = []
        let folder = relative.isEmpty ? path : path + "/" + relative
        for name in FileSystem.list(folder) {
            let child = relative.isEmpty ? name : relative + "/" + name
            if isFolder(folder + "/" + name) {
                if recursive && !name.hasPrefix(".") { found += files(in: path, relative: child, recursive: true) }
            } else {
                found.append(child)
            }
        }
        return found
    }

    /// A folder itself, not a symbolic link to one: walks never follow links (`ln -s . self` would never end).
    private static func isFolder(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }
}

func monotonicUSec() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
}
