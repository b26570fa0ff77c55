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
/// folders are quiet for `settle` (at most `maxDelay`), then handed over as one batch: a `git checkout` of a tree
/// becomes one batch, a file written twice in a burst one change. Runs its handlers on the epoll thread.
final class FolderWatcher: Sendable {
    enum Role: Sendable, Equatable {
        /// A folder of pickup directory `directory`, at `relative` inside it ("" for its root).
        case folder(directory: String, relative: String)
        /// The parent of `directory`'s root: sees the root come back after it was deleted.
        case parent(directory: String)
    }

    struct State {
        var directories: [String: PickupDirectory] = [:]
        var roles: [Int32: [Role]] = [:]
        var pending: [String: PickupChange] = [:]
        var order: [String] = []
        var firstPendingAt: UInt64 = 0
        var lastEventAt: UInt64 = 0
        var timerArmed = false
    }

    let inotify: Inotify
    let settle: Duration
    let maxDelay: Duration
    private let state = Mutex(State())
    private let token = Mutex<FDWatcher.Token?>(nil)
    private let onBatch: @Sendable ([PickupChange]) -> Void
    private let onOverflow: @Sendable () -> Void

    init(
        settle: Duration, maxDelay: Duration = .seconds(1), onBatch: @escaping @Sendable ([PickupChange]) -> Void,
        onOverflow: @escaping @Sendable () -> Void
    ) throws {
        inotify = try Inotify()
        self.settle = settle
        self.maxDelay = maxDelay
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

    var directories: [PickupDirectory] { state.withLock { Array($0.directories.values) } }

    /// Starts watching a folder (and its parent, so that a deleted folder that comes back is watched again).
    func add(_ directory: PickupDirectory) {
        state.withLock { state in
            state.directories[directory.name] = directory
            attachParent(directory, &state)
            _ = attachTree(directory, relative: "", &state)
        }
    }

    func remove(_ name: String) {
        state.withLock { state in
            state.directories[name] = nil
            for (wd, roles) in state.roles {
                let kept = roles.filter { role in
                    switch role {
                    case .folder(let d, _), .parent(let d): d != name
                    }
                }
                if kept.isEmpty {
                    inotify.removeWatch(wd)
                    state.roles[wd] = nil
                } else {
                    state.roles[wd] = kept
                }
            }
            state.order.removeAll { state.pending[$0]?.directory == name }
            state.pending = state.pending.filter { $0.value.directory != name }
        }
    }

    /// Every file in a folder that deploys somewhere, as changes to compare with the log (a rescan).
    func scan(_ directory: PickupDirectory) -> [PickupChange] {
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
        }
        if overflow { onOverflow() }
    }

    private func apply(_ event: InotifyEvent, role: Role, _ state: inout State) {
        switch role {
        case .parent(let name):
            guard let directory = state.directories[name], event.name == FileSystem.baseName(directory.path),
                event.has(InotifyEvent.isDirectory), event.has(InotifyEvent.create | InotifyEvent.movedTo)
            else { return }
            for relative in attachTree(directory, relative: "", &state) { note(directory, relative, .changed, &state) }
        case .folder(let name, let relative):
            guard let directory = state.directories[name] else { return }
            if event.has(InotifyEvent.moveSelf) && relative.isEmpty {
                // The root moved away: its watch would follow it. Drop it; the parent sees a new one appear.
                inotify.removeWatch(event.wd)
                return
            }
            guard !event.name.isEmpty else { return }
            let child = relative.isEmpty ? event.name : relative + "/" + event.name
            if event.has(InotifyEvent.isDirectory) {
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
        state.pending[path] = PickupChange(
            directory: directory.name, path: path, relative: relative, kind: kind, detectedUSec: realtimeUSec())
        if !state.timerArmed {
            state.timerArmed = true
            FDWatcher.shared.after(settle) { [weak self] in self?.settleTimer() }
        }
    }

    private func settleTimer() {
        let settleUSec =
            UInt64(settle.components.seconds) * 1_000_000 + UInt64(settle.components.attoseconds / 1_000_000_000_000)
        let maxUSec = UInt64(maxDelay.components.seconds) * 1_000_000
        let batch = state.withLock { state -> [PickupChange] in
            let now = monotonicUSec()
            let quiet = now &- state.lastEventAt
            if !state.pending.isEmpty && quiet < settleUSec && now &- state.firstPendingAt < maxUSec {
                FDWatcher.shared.after(.microseconds(Int64(settleUSec - quiet))) { [weak self] in self?.settleTimer() }
                return []
            }
            state.timerArmed = false
            let batch = state.order.compactMap { state.pending[$0] }
            state.pending = [:]
            state.order = []
            return batch
        }
        if !batch.isEmpty { onBatch(batch) }
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
            if FileSystem.isDirectory(path + "/" + name) {
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
            if FileSystem.isDirectory(folder + "/" + name) {
                if recursive && !name.hasPrefix(".") { found += files(in: path, relative: child, recursive: true) }
            } else {
                found.append(child)
            }
        }
        return found
    }
}

func monotonicUSec() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
}
