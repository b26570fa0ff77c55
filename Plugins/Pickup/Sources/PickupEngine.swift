import BerthKit
import Glibc
import Synchronization

/// Where deployments go: the peers and the config importer (from the plugin context; tests pass their own).
struct DeployTargets: Sendable {
    var peer: @Sendable (String) -> (any BerthPlugin)?
    var importConfig: @Sendable (String) async throws -> Void
}

/// What the engine tells the bus: every deployment's outcome (`Deployed` / `DeployFailed`).
typealias DeploymentAnnouncer = @Sendable (DeploymentRecord) -> Void

/// The deployment logic: turns changes in folders, uploads and requests into deployments, one at a time, each
/// logged, stored content-addressed, announced, and marked beside its source when the folder asks for markers.
/// Its work (reads, hashing, the store, SQLite) blocks, so the actor runs on a thread of its own.
actor PickupEngine {
    private let executor = ThreadExecutor(name: "berth-pickup")
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    /// Lets the engine's thread exit once its queued work has run (the plugin stops).
    nonisolated func stopExecutor() { executor.stop() }
    let log: DeploymentLog
    let store: ArtifactStore
    let targets: DeployTargets
    let stateDirectory: String
    var keepVersions: Int
    var builtinMarkers: Bool
    /// The size limits of uploads and descriptors (`max_upload_bytes`, `max_artifact_bytes`): read on the bus
    /// thread (Deploy refuses an oversized upload before it reaches the engine) and here.
    nonisolated let limits: Mutex<UploadLimits>
    /// The largest artifact read from a folder, by DeployFile, by Rollback or from a descriptor
    /// (`pickup: max_artifact_bytes`).
    var maxArtifactBytes: Int { limits.withLock { $0.artifact } }
    var directories: [String: PickupDirectory] = [:]
    /// Set from the bus thread (`Paused`); read when a batch arrives.
    nonisolated let pausedFlag = Mutex(false)
    var queued: [PickupChange] = []
    var announce: DeploymentAnnouncer = { _ in }
    /// A folder file's ctime (ns) when its content was last read and deployed, by path: an event of that file whose
    /// ctime is still this one is news of what is already deployed (the rescan of a folder just added deployed it
    /// first); `touch` or a save of the same content changes the ctime and deploys again.
    var readChangeTimes: [String: UInt64] = [:]
    let logger = Logger(label: "berth.pickup")

    init(stateDirectory: String, targets: DeployTargets, config: PickupConfig) throws {
        self.stateDirectory = stateDirectory
        try FileSystem.makeDirectories(stateDirectory)
        log = try DeploymentLog(path: stateDirectory + "/pickup.sqlite")
        store = try ArtifactStore(root: stateDirectory + "/store")
        self.targets = targets
        keepVersions = config.keepVersions
        builtinMarkers = config.markers
        limits = Mutex(UploadLimits(config))
    }

    func setAnnouncer(_ announcer: @escaping DeploymentAnnouncer) { announce = announcer }

    /// Where a change goes whose file was still open for writing when it was read: the watcher looks at it again
    /// (`FolderWatcher.recheck`), at most `maxRechecks` times; after that, its writer's close is an event of its own.
    var recheck: @Sendable (PickupChange) -> Void = { _ in }
    static let maxRechecks = 6
    func setRecheck(_ recheck: @escaping @Sendable (PickupChange) -> Void) { self.recheck = recheck }

    func configure(_ config: PickupConfig) {
        keepVersions = config.keepVersions
        builtinMarkers = config.markers
        limits.withLock { $0 = UploadLimits(config) }
    }

    func setDirectory(_ directory: PickupDirectory) { directories[directory.name] = directory }
    func removeDirectory(_ name: String) { directories[name] = nil }

    nonisolated var isPaused: Bool { pausedFlag.withLock { $0 } }

    /// Artifacts ("target/name") with a deployment, undeploy or rollback under way, and who waits for each.
    private var busy: Set<String> = []
    private var waiting: [String: [CheckedContinuation<Void, Never>]] = [:]

    /// Runs `body` alone for one artifact, callers in arrival order. The actor alone is not enough: at each await
    /// inside a deployment (a service definition, a config import, a rolling deploy) another call could start a
    /// second deployment of that artifact, and the older of the two could be logged last. Other artifacts go on:
    /// a rolling deploy of minutes holds back no upload of a service definition.
    func exclusive<T>(name: String, target: String, _ body: () async throws -> T) async rethrows -> T {
        let key = target + "/" + name
        if busy.contains(key) {
            await withCheckedContinuation { waiting[key, default: []].append($0) }
        } else {
            busy.insert(key)
        }
        defer {
            if var queue = waiting[key], !queue.isEmpty {
                let next = queue.removeFirst()
                waiting[key] = queue.isEmpty ? nil : queue
                next.resume()
            } else {
                busy.remove(key)
            }
        }
        return try await body()
    }

    /// Deploys what was queued while paused (once per path, in arrival order), when no longer paused.
    func drainQueue() async {
        guard !isPaused, !queued.isEmpty else { return }
        let work = queued
        queued = []
        await process(work)
    }

    /// Deploys a batch of changes (or queues it while paused).
    func process(_ batch: [PickupChange]) async {
        if isPaused {
            for change in batch {
                queued.removeAll { $0.path == change.path }
                queued.append(change)
            }
            return
        }
        // Code files for one service (`service:NAME`) deploy together after the rest of the batch (its service
        // definitions first): one release, one restart (PickupEngine+ServiceCode).
        var serviceCode: [(target: String, changes: [PickupChange])] = []
        for change in batch {
            guard let target = serviceCodeTarget(of: change) else {
                await apply(change)
                continue
            }
            if let index = serviceCode.firstIndex(where: { $0.target == target }) {
                serviceCode[index].changes.append(change)
            } else {
                serviceCode.append((target, [change]))
            }
        }
        for (target, changes) in serviceCode { await deployServiceCodeBatch(target: target, changes) }
    }

    private func apply(_ change: PickupChange) async {
        guard let directory = directories[change.directory],
            let placement = directory.placement(forRelative: change.relative)
        else { return }
        let name = FileSystem.baseName(change.relative)
        switch placement {
        case .deploy(let target):
            await exclusive(name: name, target: target) {
                await apply(change, directory: directory, name: name, target: target)
            }
        case .unsupported(let target, let reason):
            guard change.kind == .changed else { return }
            await exclusive(name: name, target: target) {
                refuseUnsupported(change, directory: directory, name: name, target: target, reason: reason)
            }
        }
    }

    /// A file its folder's target cannot take: a failed deployment that says why (logged, `DeployFailed`, the
    /// `.failed` marker). Its content is hashed, so that a start finds it unchanged and says it once only.
    private func refuseUnsupported(
        _ change: PickupChange, directory: PickupDirectory, name: String, target: String, reason: String
    ) {
        let read = try? SourceFile.read(change.path, limit: maxArtifactBytes)
        guard case .whole(let bytes)? = read else {
            if read == nil && Self.isFile(change.path) {  // too large or unreadable: said all the same
                let record = fail(name: name, target: target, source: change.path, error: reason)
                logger.error("pickup did not deploy \(change.path): \(record.error)")
            }
            return
        }
        let sha = SHA256.hex(bytes)
        if change.fromRescan, failedUnchanged(name: name, target: target, source: change.path, sha256: sha) { return }
        let record = fail(
            name: name, target: target, source: change.path, error: reason, sha256: sha, size: Int64(bytes.count))
        logger.error("pickup did not deploy \(change.path): \(record.error)")
        if directory.markers || (directory.origin == .builtin && builtinMarkers) {
            Markers.write(beside: change.path, record)
        }
    }

    /// True when the artifact's last outcome is a failure of this very file with this very content: a rescan (a
    /// start) does not try it again; a change to the file (or `touch`, or DeployFile) does.
    private func failedUnchanged(name: String, target: String, source: String, sha256: String) -> Bool {
        guard let last = try? log.latest(name: name, target: target) else { return false }
        return last.status == .failed && last.source == source && last.sha256 == sha256
    }

    /// True when what is deployed came from a person's explicit action (an upload, a Rollback, a DeployFile of
    /// another path) made after the file at `path` last changed: a rescan leaves it deployed, and so does an event
    /// of the file read late (a change seen before the action); the file's next change deploys the file again.
    /// For an event, the kernel's coarse ctime (a few ms behind) could place a write just after the action before
    /// it: only a ctime `marginUSec` or more before the action counts as older. `changedUSec`: the file's ctime.
    private func explicitActionStands(
        _ current: DeploymentRecord, over path: String, changedUSec: UInt64?, marginUSec: UInt64
    ) -> Bool {
        guard current.source != path, !picksUp(current.source, for: current.target), let changed = changedUSec
        else { return false }
        return changed + marginUSec <= current.timeUSec
    }

    /// True when the file has not changed since `deployedUSec` by its ctime: its event may have been read after the
    /// deployment that already took its content (a busy machine reads events late), while `touch` after the
    /// deployment moves the ctime past it. The kernel stamps ctime with a coarse clock (a few ms behind), so only a
    /// ctime 10 ms or more before the deployment counts. `changedUSec`: the file's ctime.
    private static func unchanged(changedUSec: UInt64?, since deployedUSec: UInt64) -> Bool {
        guard let changed = changedUSec else { return false }
        return changed + 10_000 < deployedUSec
    }

    /// When the file's content or name last changed (ctime: a write, a rename into the folder; no tool sets it
    /// back, as `touch -d` or `rsync -t` can set the mtime), in wall-clock nanoseconds.
    static func changeTimeNSec(_ path: String) -> UInt64? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return UInt64(max(0, info.st_ctim.tv_sec)) * 1_000_000_000 + UInt64(max(0, info.st_ctim.tv_nsec))
    }

    private func apply(_ change: PickupChange, directory: PickupDirectory, name: String, target: String) async {
        guard let file = await prepare(change, directory: directory, name: name, target: target) else { return }
        let record = await deploy(
            name: name, bytes: file.bytes, sha256: file.sha256, target: target, source: file.source)
        noteDeployed(file, record)
    }

    /// After a folder's file deployed: its markers, and the change time it had when it was read.
    func noteDeployed(_ file: PreparedFile, _ record: DeploymentRecord) {
        if file.markers { Markers.write(beside: file.source, record) }
        if record.status == .deployed, let changed = file.changeTimeNSec { readChangeTimes[file.source] = changed }
    }

    /// A changed file of a batch, read whole and worth deploying.
    struct PreparedFile: Sendable {
        var name: String
        var bytes: [UInt8]
        var sha256: String
        var source: String
        /// Whether its folder wants `.deployed`/`.failed` markers beside it.
        var markers: Bool
        /// Its ctime (ns) when it was read.
        var changeTimeNSec: UInt64?
    }

    /// Everything of a change short of deploying it: a removal undoes its deployment, an unreadable file is a
    /// failed one, an unchanged one (and the other cases below) is passed over; nil then. Else the file to deploy.
    func prepare(_ change: PickupChange, directory: PickupDirectory, name: String, target: String) async
        -> PreparedFile?
    {
        var change = change
        if change.kind == .removed && Self.isFile(change.path) {
            // Back already (an editor's save renames the old file away, then writes the new one): what is there
            // now deploys if it differs from what is deployed, as in a rescan.
            change.kind = .changed
            change.fromRescan = true
        }
        let markers = directory.markers || (directory.origin == .builtin && builtinMarkers)
        let current = try? log.current(name: name, target: target)
        if change.kind == .removed {
            readChangeTimes[change.path] = nil
            guard let current, current.status == .deployed else { return nil }
            // Another file of that name (a/index.html gone, b/index.html deployed) stays deployed.
            if current.source != change.path && picksUp(current.source, for: target) { return nil }
            _ = try? await undeploy(name: name, target: target, source: change.path)
            if markers { Markers.clear(change.path) }
            return nil
        }
        // What is there now, and only when whole (see SourceFile).
        let bytes: [UInt8]
        do {
            switch try SourceFile.read(change.path, limit: maxArtifactBytes) {
            case .whole(let read): bytes = read
            case .gone: return nil  // moved on or deleted before the settle ended: nothing to deploy
            case .notRegular(let reason):
                logger.debug("\(change.path) \(reason): not deployed")
                return nil
            case .openForWriting:
                logger.debug("\(change.path) is open for writing: it deploys when its writer closes it")
                if change.rechecks < Self.maxRechecks {
                    var again = change
                    again.rechecks += 1
                    recheck(again)
                }
                return nil
            }
        } catch {
            // A file that cannot be read, or one over max_artifact_bytes (a 1 TiB sparse file), is a failed
            // deployment with the reason; nothing of it is kept in memory.
            let record = fail(name: name, target: target, source: change.path, error: Self.describe(error))
            logger.error("pickup did not deploy \(change.path): \(record.error)")
            if markers { Markers.write(beside: change.path, record) }
            return nil
        }
        if change.rechecks > 0, let last = try? log.latest(name: name, target: target),
            last.timeUSec >= change.detectedUSec
        {
            return nil  // a later event of the file was handled meanwhile: this look again is news of it
        }
        let sha = SHA256.hex(bytes)
        // The file's ctime, read once for every comparison below.
        let changed = Self.changeTimeNSec(change.path)
        let changedUSec = changed.map { $0 / 1000 }
        if change.fromRescan, failedUnchanged(name: name, target: target, source: change.path, sha256: sha) {
            return nil  // it failed as it is, and nothing changed since: a restart alone does not try it again
        }
        if let current, current.status == .deployed {
            if current.sha256 == sha
                && (change.fromRescan || current.timeUSec >= change.detectedUSec
                    || (current.source == change.path && changed != nil && readChangeTimes[change.path] == changed)
                    || Self.unchanged(changedUSec: changedUSec, since: current.timeUSec))
            {
                return nil  // unchanged since it was deployed, or already deployed after this change was seen
            }
            if explicitActionStands(
                current, over: change.path, changedUSec: changedUSec, marginUSec: change.fromRescan ? 0 : 10_000)
            {
                logger.info(
                    "\(change.path) is older than the \(current.source) of \"\(name)\" to \(target): that stays deployed")
                return nil
            }
            if change.fromRescan && current.source != change.path && picksUp(current.source, for: target) {
                // Two files of one name (a/index.html, b/index.html): the one written last is deployed and a rescan
                // keeps it (its own change deploys it), rather than deploying each in turn at every rescan.
                logger.warning(
                    "\(change.path) and \(current.source) both deploy as \"\(name)\" to \(target): keeping \(current.source)"
                )
                return nil
            }
        }
        return PreparedFile(
            name: name, bytes: bytes, sha256: sha, source: change.path, markers: markers, changeTimeNSec: changed)
    }

    /// True when `path` is a file in a pickup folder that deploys it to `target` (a source that still stands: not
    /// an upload, a rollback, a DeployFile from elsewhere, a folder since moved or a file since deleted).
    private func picksUp(_ path: String, for target: String) -> Bool {
        guard Self.isFile(path) else { return false }
        return directories.values.contains { directory in
            path.hasPrefix(directory.path + "/")
                && directory.target(forRelative: String(path.dropFirst(directory.path.count + 1))) == target
        }
    }

    /// A regular file (through links): a folder or FIFO where a file was is not the file back.
    private static func isFile(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
    }

    /// Deploys one artifact, logs and announces the outcome; returns the record.
    @discardableResult
    func deploy(name: String, bytes: [UInt8], sha256: String? = nil, target: String, source: String) async
        -> DeploymentRecord
    {
        let sha = sha256 ?? SHA256.hex(bytes)
        var record = DeploymentRecord(
            name: name, target: target, source: source, sha256: sha, size: Int64(bytes.count), timeUSec: SystemClock.wallUSec(),
            status: .deployed, error: "")
        do {
            let stored = try store.store(bytes, sha256: sha, name: name)
            try await perform(target: target, name: name, bytes: bytes, storedPath: stored, source: source)
        } catch {
            record.status = .failed
            record.error = Self.describe(error)
            record.code = Self.code(of: error)
        }
        return finish(record)
    }

    /// Deploys the file at `path` on request (`DeployFile`), read here, off the cooperative pool.
    func deployFile(path: String, target: String) async throws -> DeploymentRecord {
        try await exclusive(name: FileSystem.baseName(path), target: target) {
            try await deployFileAlone(path: path, target: target)
        }
    }

    private func deployFileAlone(path: String, target: String) async throws -> DeploymentRecord {
        let name = FileSystem.baseName(path)
        let bytes: [UInt8]
        let read: SourceFile.Read
        do {
            read = try SourceFile.read(path, limit: maxArtifactBytes)
        } catch let refusal as FileRefusal {
            // Over max_artifact_bytes: a failed deployment with the reason, as for a file in a folder.
            var record = fail(name: name, target: target, source: path, error: Self.describe(refusal))
            record.code = record.code ?? .invalidArgument
            logger.error("pickup DeployFile did not deploy \(path): \(record.error)")
            return record
        }
        switch read {
        case .whole(let read): bytes = read
        case .gone: throw BerthError.notFound("pickup DeployFile: \"\(path)\" is not an existing file")
        case .notRegular(let reason):
            throw BerthError.invalidArgument("pickup DeployFile: \"\(path)\" \(reason)")
        case .openForWriting:
            throw BerthError.busy(
                "pickup DeployFile: \"\(path)\" is open for writing by a process; deploy it once it is closed")
        }
        return await deploy(name: name, bytes: bytes, target: target, source: path)
    }

    /// Logs and announces a deployment that failed before it reached its target (the source could not be read).
    func fail(
        name: String, target: String, source: String, error: String, sha256: String = "", size: Int64 = 0
    ) -> DeploymentRecord {
        finish(
            DeploymentRecord(
                name: name, target: target, source: source, sha256: sha256, size: size, timeUSec: 0, status: .failed,
                error: error))
    }

    /// Timestamps, logs and announces an outcome; prunes the store after a deployment.
    func finish(_ outcome: DeploymentRecord) -> DeploymentRecord {
        var record = outcome
        record.timeUSec = SystemClock.wallUSec()
        do {
            record = try log.append(record)
        } catch {
            // Not logged (a full disk): no id; the caller's reply is this error, and the signal says it too.
            let why = "the deployment log could not be written: \(Self.describe(error))"
            record.error = record.status == .failed ? record.error + "; " + why : why
            record.status = .failed
            record.code = Self.code(of: error)
        }
        if record.status == .deployed { pruneStore(name: record.name) }
        announce(record)
        return record
    }

    /// Deploys every file in the folders whose content differs from what the log says is deployed (at start, after
    /// an inotify queue overflow lost events, and for a folder just added). Listing the folders runs here too, off
    /// the cooperative pool.
    func rescan(_ folders: [PickupDirectory]) async {
        await process(folders.sorted { $0.name < $1.name }.flatMap(FolderWatcher.scan))
    }

    func listDeployments(limit: Int) throws -> [DeploymentRecord] { try log.list(limit: limit) }
    func savedDirectories() throws -> [PickupDirectory] { try log.savedDirectories() }
    func saveDirectory(_ directory: PickupDirectory) throws { try log.saveDirectory(directory) }
    func deleteSavedDirectory(_ name: String) throws { try log.deleteDirectory(name) }

    /// Keeps the newest `keepVersions` copies of an artifact for Rollback.
    private func pruneStore(name: String) {
        guard let drop = try? log.versionsToDrop(name: name, keep: keepVersions), !drop.isEmpty else { return }
        store.remove(name: name, versions: drop)
    }

    /// The error code a failure replies with: a BerthError's own, `StorageFull` for a full disk or quota,
    /// `InvalidArgument` for an artifact over its size limit, the D-Bus error a peer replied with; else `Failed`.
    static func code(of error: any Error) -> BerthError.Code {
        if let error = error as? BerthError { return error.code }
        if let error = error as? SystemError, error.errno == ENOSPC || error.errno == EDQUOT { return .storageFull }
        if error is FileRefusal { return .invalidArgument }
        if let error = error as? DBusError, let code = BerthError.Code(dbusName: error.name) { return code }
        return .failed
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? BerthError { return error.message }
        if let refusal = error as? FileRefusal, refusal.kind == .tooLarge {
            return "\(refusal) (pickup: max_artifact_bytes)"
        }
        if let error = error as? DBusError { return error.description }
        return String(describing: error)
    }
}
