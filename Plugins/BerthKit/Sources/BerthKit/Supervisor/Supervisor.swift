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
/// kills those groups (`reapLeftovers`, run by `init` unless told otherwise). Nothing is ever adopted.
public final class Supervisor: Sendable {
    public let runtimeDirectory: String
    /// The groups this supervisor runs: `<runtimeDirectory>/supervisor.pids`.
    public let pidsFile: String
    /// The leftover groups the sweep in `init` killed (their pgids).
    public let leftoversKilled: [Int32]
    let watcher: FDWatcher
    let logger: Logger

    struct GroupRecord: Sendable {
        var startTime: UInt64
        var name: String
    }
    let groups = Mutex<[Int32: GroupRecord]>([:])
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
        try Self.makeDirectories(runtimeDirectory + "/notify")
        leftoversKilled = reapLeftovers ? Self.reapLeftovers(stateFile: pidsFile, logger: logger) : []
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

    /// Records a new group (its leader's start time) and rewrites the pids file.
    func register(group pgid: Int32, name: String) {
        let start = ProcStat.read(pid: pgid)?.startTime ?? 0
        let records = groups.withLock { groups in
            groups[pgid] = GroupRecord(startTime: start, name: name)
            return groups
        }
        ChildReaper.shared.addGroup(pgid)
        writePidsFile(records)
    }

    /// Forgets a group that is gone and rewrites the pids file.
    func unregister(group pgid: Int32) {
        let records = groups.withLock { groups in
            groups.removeValue(forKey: pgid)
            return groups
        }
        ChildReaper.shared.removeGroup(pgid)
        writePidsFile(records)
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
