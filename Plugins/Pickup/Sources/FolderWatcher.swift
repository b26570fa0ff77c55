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
    /// How many times the file was looked at again because it was still open for writing (`FolderWatcher.recheck`).
    var rechecks = 0
}

/// Watches pickup folders with inotify. Events are coalesced per path until the folders are quiet for `settle` (at
/// most `maxDelay`), then handed over as one batch: a file written twice in a burst is one change. A folder inside a
/// git work tree also watches its git directory: while git holds `index.lock` (a checkout, merge or pull writing the
/// tree) the batch waits for git to finish, so the whole operation is one batch however long git pauses between
/// files (up to `gitQuiet` without any event, which also bounds the wait behind a stale lock, and `gitMaxDelay` in
/// all).
///
/// Threads. The inotify descriptor is watched on BerthKit's shared epoll thread, which every plugin's supervision
/// uses too, so its callback only reads the events and hands them to `worker` (a thread that exists while there is
/// work). Everything else runs there, one item at a time, in order: applying events, walking folder trees and adding
/// watches (a folder added, a folder that appears, the re-walk after an overflow), removing folders, and the settle
/// timer's batches. The watch table (`WatchTable`) is touched only on the worker, so neither the epoll thread nor
/// the bus thread ever waits behind a walk. While the worker is busy, events queue up to `maxBacklog`; beyond that
/// they are dropped and handled as an inotify overflow (every folder watched again, then rescanned).
///
/// The roles live in three more files: the table (`+Table`), the tree walker (`+Walker`), the event reader
/// (`+Events`), and the worker (`+Worker`).
final class FolderWatcher: Sendable {
    let inotify: Inotify
    let settle: Duration
    let maxDelay: Duration
    let gitQuiet: Duration
    let gitMaxDelay: Duration
    /// Taken only on `worker` (never contended: the lock makes the confinement visible to the compiler).
    let table = Mutex(WatchTable())
    let worker = SerialWorker(name: "berth-pickup-w")
    /// The folders by name, apart from `table`, for readers on any thread (the bus methods, `Directories`).
    /// A name claimed for an add under way is `ready == false`: taken, but not yet a folder anyone can see or remove.
    private let catalog = Mutex<[String: (directory: PickupDirectory, ready: Bool)]>([:])
    private let token = Mutex<FDWatcher.Token?>(nil)
    /// Events handed to the worker and not yet applied, and whether an overflow is queued (events are dropped
    /// until it runs).
    private let backlog = Mutex<(events: Int, overflowQueued: Bool)>((0, false))
    static let maxBacklog = 65_536
    let onBatch: @Sendable ([PickupChange]) -> Void
    let onOverflow: @Sendable () -> Void

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
        let watch = try FDWatcher.shared.watch(fd: inotify.fd) { [weak self] _ in self?.eventsArrived() }
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

    /// On the epoll thread: reads what inotify has and hands it to the worker. Nothing slow, no wait on the table.
    private func eventsArrived() {
        let events = inotify.readEvents()
        guard !events.isEmpty else { return }
        let admitted = backlog.withLock { backlog -> Bool? in
            if backlog.overflowQueued { return nil }
            if backlog.events + events.count > Self.maxBacklog {
                backlog.overflowQueued = true
                return false
            }
            backlog.events += events.count
            return true
        }
        switch admitted {
        case true?:
            worker.submit { [self] in
                backlog.withLock { $0.events -= events.count }
                process(events)
            }
        case false?:
            worker.submit { [self] in
                backlog.withLock { $0.overflowQueued = false }
                process([.queueOverflow])
            }
        case nil: break  // dropped: the overflow queued covers them
        }
    }

    var directories: [PickupDirectory] { catalog.withLock { $0.values.filter(\.ready).map(\.directory) } }

    /// The folders watched, as "directory:relative" ("site:" for a root), sorted.
    var watchedFolders: [String] {
        get async { await worker.run { [self] in table.withLock { $0.watchedFolders } } }
    }

    /// Reserves `directory`'s name before it is added; false when a folder has that name already.
    func claim(_ directory: PickupDirectory) -> Bool {
        catalog.withLock { catalog in
            guard catalog[directory.name] == nil else { return false }
            catalog[directory.name] = (directory, false)
            return true
        }
    }

    /// Starts watching a folder (and its parent, so that a deleted folder that comes back is watched again);
    /// returns once its tree was walked and watched, on the worker.
    func add(_ directory: PickupDirectory) async {
        catalog.withLock { $0[directory.name] = (directory, true) }
        await worker.run { [self] in
            table.withLock { table in
                table.directories[directory.name] = directory
                attachParent(directory, &table)
                attachGitDirectory(directory, &table)
                _ = attachTree(directory, relative: "", &table)
            }
        }
    }

    /// Stops watching a folder; returns once its watches are gone.
    func remove(_ name: String) async {
        await worker.run { [self] in table.withLock { $0.forget(name, inotify) } }
        // The name is free again only once its watches are gone (an add of it may follow at once).
        catalog.withLock { $0[name] = nil }
    }

    /// Applies events as if inotify had sent them (a test's overflow), and returns once they are applied.
    func handle(_ events: [InotifyEvent]) async {
        await worker.run { [self] in process(events) }
    }
}
