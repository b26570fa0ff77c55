import BerthKit
import Glibc

extension InotifyEvent {
    /// IN_Q_OVERFLOW as the kernel sends it (and as the watcher queues it when its own backlog is full).
    static let queueOverflow = InotifyEvent(wd: -1, mask: InotifyEvent.overflow, cookie: 0, name: "")
}

/// Applying inotify events to the table, and the settle timer that turns pending changes into batches. All of it
/// runs on the watcher's worker.
extension FolderWatcher {
    func process(_ events: [InotifyEvent]) {
        var overflow = false
        table.withLock { table in
            for event in events {
                if event.has(InotifyEvent.overflow) {
                    overflow = true
                    continue
                }
                for role in table.roles[event.wd] ?? [] { apply(event, role: role, &table) }
                if event.has(InotifyEvent.ignored) { table.roles[event.wd] = nil }
            }
            guard overflow else { return }
            // Events were lost, folder creations and moves among them: watch every folder afresh, then rescan.
            for directory in table.directories.values {
                table.dropFolderRoles(of: directory.name, inotify)
                attachParent(directory, &table)
                _ = attachTree(directory, relative: "", &table)
            }
        }
        if overflow { onOverflow() }
    }

    private func apply(_ event: InotifyEvent, role: WatchTable.Role, _ table: inout WatchTable) {
        switch role {
        case .gitDirectory(let name):
            guard event.name == GitWorkTree.indexLock, let gitDirectory = table.gitDirectories[name] else { return }
            if event.has(InotifyEvent.create | InotifyEvent.movedTo) {
                table.gitLocked.insert(gitDirectory)
            } else if event.has(InotifyEvent.delete | InotifyEvent.movedFrom) {
                table.gitLocked.remove(gitDirectory)
                // Git is done: what it wrote deploys one settle from now.
                if !table.pending.isEmpty { table.lastEventAt = SystemClock.monotonicUSec() }
            }
        case .parent(let name):
            guard let directory = table.directories[name], event.name == FileSystem.baseName(directory.path),
                event.has(InotifyEvent.isDirectory), event.has(InotifyEvent.create | InotifyEvent.movedTo)
            else { return }
            for relative in attachTree(directory, relative: "", &table) { note(directory, relative, .changed, &table) }
        case .folder(let name, let relative):
            guard let directory = table.directories[name] else { return }
            if event.has(InotifyEvent.moveSelf) && relative.isEmpty {
                // The root moved away: its watches would follow it. Drop them (and only this folder's: a watch can
                // serve another pickup folder too); the parent sees a new root appear.
                table.dropFolderRoles(of: name, inotify)
                return
            }
            guard !event.name.isEmpty else { return }
            let child = relative.isEmpty ? event.name : relative + "/" + event.name
            if event.has(InotifyEvent.isDirectory) {
                if event.has(InotifyEvent.movedFrom) {
                    // A subfolder moved away (or renamed): its watches would follow it under their old names.
                    table.dropFolderRoles(of: name, subfolder: child, inotify)
                }
                if directory.recursive, !event.name.hasPrefix("."),
                    event.has(InotifyEvent.create | InotifyEvent.movedTo)
                {
                    for file in attachTree(directory, relative: child, &table) {
                        note(directory, file, .changed, &table)
                    }
                }
                return
            }
            if event.has(InotifyEvent.closeWrite | InotifyEvent.movedTo) {
                note(directory, child, .changed, &table)
            } else if directory.undeployOnDelete, event.has(InotifyEvent.delete | InotifyEvent.movedFrom) {
                note(directory, child, .removed, &table)
            }
        }
    }

    /// Records a change for the next batch and makes sure the settle timer runs.
    private func note(
        _ directory: PickupDirectory, _ relative: String, _ kind: PickupChange.Kind, _ table: inout WatchTable
    ) {
        guard directory.placement(forRelative: relative) != nil else { return }
        let path = directory.path + "/" + relative
        enqueue(
            PickupChange(
                directory: directory.name, path: path, relative: relative, kind: kind,
                detectedUSec: SystemClock.wallUSec()), &table)
    }

    /// Looks at a change again after `delay` (unless a newer event of its file is pending by then): the engine found
    /// the file still open for writing. The kernel sends IN_CLOSE_WRITE a moment before it counts the writer gone, so
    /// a file whose last writer has just closed it can still look open, and that close was its last event.
    func recheck(_ change: PickupChange, after delay: Duration) {
        FDWatcher.shared.after(delay) { [weak self] in
            guard let self else { return }
            self.worker.submit {
                self.table.withLock { table in
                    guard table.directories[change.directory] != nil, table.pending[change.path] == nil else { return }
                    self.enqueue(change, &table)
                }
            }
        }
    }

    /// Adds a change to the next batch (replacing a pending one of its path) and makes sure the settle timer runs.
    private func enqueue(_ change: PickupChange, _ table: inout WatchTable) {
        let now = SystemClock.monotonicUSec()
        if table.pending.isEmpty { table.firstPendingAt = now }
        table.lastEventAt = now
        if table.pending[change.path] == nil { table.order.append(change.path) }
        table.pendingDirectories.insert(change.directory)
        table.pending[change.path] = change
        if !table.timerArmed {
            table.timerArmed = true
            armSettleTimer(settle)
        }
    }

    /// The timer runs on the epoll thread; what it does runs on the worker.
    private func armSettleTimer(_ delay: Duration) {
        FDWatcher.shared.after(delay) { [weak self] in
            guard let self else { return }
            self.worker.submit { self.settleTimer() }
        }
    }

    private func settleTimer() {
        let batch = table.withLock { table -> [PickupChange] in
            let now = SystemClock.monotonicUSec()
            let quiet = now &- table.lastEventAt
            // Git writing the work tree of a folder with pending changes: wait for it (looking again every settle).
            let gitBusy =
                !table.gitLocked.isEmpty
                && table.pendingDirectories.contains { table.gitDirectories[$0].map(table.gitLocked.contains) ?? false }
            let settleUSec = settle.microsecondsClamped
            let (quietNeeded, maxUSec) =
                gitBusy
                ? (gitQuiet.microsecondsClamped, gitMaxDelay.microsecondsClamped)
                : (settleUSec, maxDelay.microsecondsClamped)
            if !table.pending.isEmpty && quiet < quietNeeded && now &- table.firstPendingAt < maxUSec {
                armSettleTimer(.microseconds(Int64(gitBusy ? max(settleUSec, 1000) : settleUSec - quiet)))
                return []
            }
            table.timerArmed = false
            return table.takeBatch()
        }
        if !batch.isEmpty { onBatch(batch) }
    }
}
