import CBerthShim
import Glibc
import Synchronization

/// Makes `SupervisedProcess`es and keeps what they share: the runtime folder (notify sockets and the pids file)
/// and the record of every live process group, written atomically to `pidsFile` so that the next daemon start can
/// kill what a `kill -9` of this one left behind.
///
/// The kill -9 story: every child gets `PR_SET_PDEATHSIG(SIGKILL)` (spawned from the FDWatcher's thread, which
/// lives as long as the daemon), so a killed daemon takes its direct children with it. Grandchildren do not get
/// that signal; they are still in the child's process group, which is listed in `pidsFile`, and the next start
/// kills those groups (`reapLeftovers`, run by `init` unless told otherwise), and every process that carries this
/// supervisor's marker (`reapMarked`, see Supervisor+Marker), wherever it went. Nothing is ever adopted.
public final class Supervisor: Sendable {
    public let runtimeDirectory: String
    /// The groups this supervisor runs: `<runtimeDirectory>/supervisor.pids`.
    public let pidsFile: String
    /// The leftover groups the sweep in `init` killed (their pgids), then the marked leftover processes it killed.
    public let leftoversKilled: [Int32]
    let watcher: FDWatcher
    let logger: Logger
    /// berthd's delegated cgroup (Supervisor+Cgroup), in which each unit gets a cgroup of its own; nil without.
    public let cgroupRoot: String?

    struct GroupRecord: Sendable {
        var startTime: UInt64
        var name: String
    }
    /// The live groups and the pids file's progress: `requested` counts changes, `written` the last change that
    /// is durable on disk. One writer at a time runs on a worker thread (never on the epoll thread and never with a
    /// unit's lock held); `waiters` are resumed once `written` reaches their change.
    struct PidsState {
        var groups: [Int32: GroupRecord] = [:]
        var requested: UInt64 = 0
        var written: UInt64 = 0
        var writing = false
        var waiters: [(UInt64, CheckedContinuation<Void, Never>)] = []
    }
    let pids = Mutex(PidsState())
    let nextSocketID = Mutex<UInt64>(0)

    /// Creates the runtime folder (mode 0700) if needed and, unless `reapLeftovers` is false, kills the groups a
    /// previous daemon recorded in `pidsFile` and left running. Use one Supervisor per runtime folder (each plugin
    /// its own folder): the pids file is rewritten whole by its owner.
    public init(
        runtimeDirectory: String, watcher: FDWatcher = .shared, logger: Logger = Logger(label: "berth.supervisor"),
        reapLeftovers: Bool = true
    ) throws {
        self.runtimeDirectory = runtimeDirectory
        self.pidsFile = runtimeDirectory + "/supervisor.pids"
        self.watcher = watcher
        self.logger = logger
        cgroupRoot = CgroupTree.delegatedRoot()
        try Self.makeDirectories(runtimeDirectory + "/notify")
        if let cgroupRoot { logger.info("supervised units run in cgroups of their own under \"\(cgroupRoot)\"") }
        leftoversKilled =
            reapLeftovers
            ? Self.reapLeftovers(stateFile: pidsFile, logger: logger)
                + Self.reapMarked(runtimeDirectory: runtimeDirectory, logger: logger) : []
        if reapLeftovers { _ = reapCgroups() }
    }

    /// A supervised unit for `spec`, inactive until `start()`. `onChange` runs on the epoll thread after every
    /// change of the unit's snapshot; keep it quick (hand the snapshot over, do not block).
    public func process(
        _ spec: ProcessSpec, onChange: (@Sendable (SupervisorSnapshot) -> Void)? = nil
    ) -> SupervisedProcess {
        SupervisedProcess(spec: spec, supervisor: self, onChange: onChange)
    }

    /// Makes this process a child subreaper (`PR_SET_CHILD_SUBREAPER`): orphaned grandchildren of supervised
    /// processes are re-parented to the daemon instead of init, and reaped by it (see `ChildReaper`). Call once,
    /// early; idempotent.
    public static func becomeSubreaper() throws {
        if cberth_set_child_subreaper() != 0 { throw SystemError("prctl(PR_SET_CHILD_SUBREAPER)", errno: errno) }
        try ChildReaper.shared.install()
    }

    /// A new notify socket path, short enough for sockaddr_un (108 bytes).
    func makeNotifySocketPath() -> String {
        let id = nextSocketID.withLock { id in
            id += 1
            return id
        }
        return "\(runtimeDirectory)/notify/\(getpid()).\(id)"
    }

    /// Records a new group (its leader's start time); the pids file is rewritten on a worker thread.
    func register(group pgid: Int32, name: String) {
        let start = ProcStat.read(pid: pgid)?.startTime ?? 0
        ChildReaper.shared.addGroup(pgid)
        updatePids { $0[pgid] = GroupRecord(startTime: start, name: name) }
    }

    /// Forgets a group that is gone; the pids file is rewritten on a worker thread.
    func unregister(group pgid: Int32) {
        ChildReaper.shared.removeGroup(pgid)
        updatePids { $0.removeValue(forKey: pgid) }
    }

    /// Returns once every group change made so far is in the pids file on disk (or its write failed and was
    /// logged). `SupervisedProcess.start()` waits for it, so a unit reported started is recorded for the next
    /// daemon start even if this one is killed right after.
    public func pidsFileWritten() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = pids.withLock { s -> Bool in
                guard s.written < s.requested else { return true }
                s.waiters.append((s.requested, continuation))
                return false
            }
            if done { continuation.resume() }
        }
    }

    private func updatePids(_ change: (inout [Int32: GroupRecord]) -> Void) {
        let startWriter = pids.withLock { s -> Bool in
            change(&s.groups)
            s.requested += 1
            guard !s.writing else { return false }
            s.writing = true
            return true
        }
        guard startWriter else { return }
        do {
            try WorkerPool.shared.submit(name: "berth-pids") { [self] in drainPids() }
        } catch {
            logger.error("cannot write \"\(pidsFile)\": \(BerthError.wrapping(error).message)")
            finishPidsWrite(upTo: nil)
        }
    }

    /// Writes the latest records until no change is left (changes made meanwhile are written by the next turn).
    private func drainPids() {
        while true {
            let next = pids.withLock { s -> ([Int32: GroupRecord], UInt64)? in
                guard s.written < s.requested else {
                    s.writing = false
                    return nil
                }
                return (s.groups, s.requested)
            }
            guard let (records, generation) = next else { return }
            writePidsFile(records)
            finishPidsWrite(upTo: generation)
        }
    }

    /// Marks the changes up to `generation` written (nil: every change so far, after a failure to start a writer)
    /// and resumes their waiters.
    private func finishPidsWrite(upTo generation: UInt64?) {
        let ready = pids.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.written = generation ?? s.requested
            if generation == nil { s.writing = false }
            let written = s.written
            let ready = s.waiters.filter { $0.0 <= written }.map(\.1)
            s.waiters.removeAll { $0.0 <= written }
            return ready
        }
        for waiter in ready { waiter.resume() }
    }

    static func makeDirectories(_ path: String) throws {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o700) != 0 && errno != EEXIST {
                throw BerthError.failed("cannot create the folder \"\(current)\": \(systemErrorText(errno))")
            }
        }
    }
}
