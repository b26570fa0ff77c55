import BerthKit
import Synchronization

/// Work for the one task that feeds the engine, in the order it happened.
enum PickupWork: Sendable {
    case batch([PickupChange])
    /// Compare these folders with the log (at start, a folder just added); `finished` ends when that is done.
    case rescan([PickupDirectory], finished: AsyncStream<Void>.Continuation? = nil)
    /// Compare every folder with the log (after an inotify overflow).
    case rescanAll
}

/// The running plugin: folders (built-in, from config, added at run time), the watcher, the engine and the task
/// between them. `PickupInterface` calls into this.
final class PickupService: Sendable {
    let engine: PickupEngine
    let watcher: FolderWatcher
    let stateDirectory: String
    /// The commit of each git folder's clone, for `Deployed` (GitFolders.swift).
    let gitCommits = GitCommits()
    private let continuation: AsyncStream<PickupWork>.Continuation
    private let consumer: Mutex<Task<Void, Never>?> = Mutex(nil)
    private let object = Mutex<BusObject?>(nil)

    init(
        stateDirectory: String, config: PickupConfig, targets: DeployTargets,
        logger: Logger = Logger(label: "berth.pickup")
    ) throws {
        self.stateDirectory = stateDirectory
        let engine = try PickupEngine(stateDirectory: stateDirectory, targets: targets, config: config)
        self.engine = engine
        let (stream, continuation) = AsyncStream.makeStream(of: PickupWork.self, bufferingPolicy: .unbounded)
        self.continuation = continuation
        watcher = try FolderWatcher(
            settle: config.settle, onBatch: { continuation.yield(.batch($0)) },
            onOverflow: { continuation.yield(.rescanAll) })
        let watcher = self.watcher
        consumer.withLock {
            $0 = Task {
                for await work in stream {
                    switch work {
                    case .batch(let changes):
                        logger.debug("a batch of \(changes.count) changes in \(Set(changes.map(\.directory)).sorted())")
                        await engine.process(changes)
                    case .rescan(let folders, let finished):
                        await engine.rescan(folders)
                        finished?.finish()
                    case .rescanAll: await engine.rescan(watcher.directories)
                    }
                }
            }
        }
    }

    /// Watches every folder, rescans them all (files changed while the daemon was down deploy), then reads events.
    func start(config: PickupConfig) async throws {
        // 50 ms, then twice as long each time (3.15 s in all over `PickupEngine.maxRechecks`).
        await engine.setRecheck { [watcher] change in
            watcher.recheck(change, after: .milliseconds(25 << change.rechecks))
        }
        for directory in PickupDirectory.builtins(stateDirectory: stateDirectory) {
            try FileSystem.makeDirectories(directory.path)
            await add(directory)
        }
        for directory in config.dirs { await add(directory) }
        for directory in try await engine.savedDirectories() { await add(directory) }
        // The watches exist. Deploy what changed while the daemon was down, before the daemon takes its bus name:
        // the rescan is the first work on the engine's queue, so batches wait behind it, and events are read from
        // now on, so that a change made during the rescan is stamped when it happened (a file the rescan deploys
        // after it changed deploys once).
        let (scanned, finished) = AsyncStream.makeStream(of: Void.self)
        continuation.yield(.rescan(watcher.directories, finished: finished))
        try watcher.start()
        for await _ in scanned {}
    }

    func stop() async {
        watcher.stop()
        continuation.finish()
        consumer.withLock { $0 }?.cancel()
        await consumer.withLock { $0 }?.value
        object.withLock { $0 }?.remove()
        // The engine's thread exits once its last job has run: a stopped plugin keeps no thread.
        engine.stopExecutor()
    }

    func attach(_ busObject: BusObject) async {
        object.withLock { $0 = busObject }
        await engine.setAnnouncer { record in
            if record.status == .deployed {
                busObject.emit(
                    "Deployed",
                    [
                        .string(String(record.id)), .string(record.name), .string(record.target), .string(record.sha256),
                        .string(self.gitCommits.commit(forSource: record.source)),
                    ])
            } else {
                busObject.emit(
                    "DeployFailed",
                    [.string(String(record.id)), .string(record.name), .string(record.target), .string(record.error)])
            }
        }
        publishDirectories()
    }

    func add(_ directory: PickupDirectory) async {
        await engine.setDirectory(directory)
        // The tree is walked and watched on the watcher's worker: not on the pool, not on the epoll thread.
        await watcher.add(directory)
        publishDirectories()
    }

    /// Adds a run-time folder (AddDirectory, ImportConfig): claims its name first, so that of two concurrent adds of
    /// one name the second is AlreadyExists, then keeps it in the database, watches it and deploys what it holds.
    func addRuntime(_ directory: PickupDirectory) async throws {
        guard watcher.claim(directory) else { throw Self.nameTaken(directory.name) }
        do {
            try await engine.saveDirectory(directory)
        } catch {
            await remove(directory.name)
            throw error
        }
        await addAndScan(directory)
    }

    static func nameTaken(_ name: String) -> BerthError {
        .alreadyExists("pickup already has a folder named \"\(name)\"")
    }

    /// Adds a folder at run time and deploys what is already in it (unless the log has that very content).
    func addAndScan(_ directory: PickupDirectory) async {
        await add(directory)
        continuation.yield(.rescan([directory]))
    }

    func remove(_ name: String) async {
        await watcher.remove(name)
        await engine.removeDirectory(name)
        publishDirectories()
    }

    /// Applies a changed config section: folders from config that changed are replaced, gone ones removed.
    func reload(_ config: PickupConfig) async {
        await engine.configure(config)
        let current = watcher.directories.filter { $0.origin == .config }
        for old in current where !config.dirs.contains(old) { await remove(old.name) }
        for new in config.dirs where !current.contains(new) {
            await addAndScan(new)
        }
    }

    func publishDirectories() {
        let rows = watcher.directories.sorted { $0.name < $1.name }.map {
            [DBusValue.string($0.name), .string($0.path), .string($0.target)]
        }
        object.withLock { $0 }?.set("Directories", .structs("(sss)", rows))
    }
}
