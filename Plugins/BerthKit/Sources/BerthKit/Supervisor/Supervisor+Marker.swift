import Glibc

/// One live process of a supervised unit, as `Processes a(us)` shows it.
public struct UnitProcess: Sendable, Equatable {
    public var pid: Int32
    /// The command line (`/proc/PID/cmdline`, arguments joined by spaces), or `[comm]` when it has none.
    public var command: String

    public init(pid: Int32, command: String) {
        self.pid = pid
        self.command = command
    }
}

/// The marker: every process a unit spawns gets `BERTH_UNIT=<runtime folder>/<unit name>` in its environment, and
/// every descendant inherits it (the kernel keeps the environment a process was exec'd with in /proc/PID/environ).
/// A descendant that leaves the unit's process group (`setsid`, `setpgid`) is still found by it: signals, the
/// "group gone" check and `processes` cover the group and every marked process, and the daemon, a child
/// subreaper, stays the ancestor of every one of them while it lives. After a `kill -9` of the daemon they are
/// re-parented to init; the next daemon with the same runtime folder finds them by the marker and kills them
/// (`reapMarked`) before it starts anything. A process that clears its own environment (`env -i`) and leaves the
/// group is out of reach of this scheme; the delegated-cgroup path of the packaging covers that case.
extension Supervisor {
    /// The environment variable of the marker.
    public static let markerVariable = "BERTH_UNIT"

    /// The marker value of the unit called `name`.
    public func marker(_ name: String) -> String { runtimeDirectory + "/" + name }

    /// Live marked processes of this supervisor among the daemon's descendants (the only place they can be while
    /// the daemon runs, as it is a subreaper), with the unit name each belongs to. Also the group members of the
    /// units' recorded groups, marked or not.
    func liveProcesses() -> [(stat: ProcStat, unit: String)] {
        let groups = pids.withLock { $0.groups }
        let prefix = runtimeDirectory + "/"
        var result: [(stat: ProcStat, unit: String)] = []
        var all: [ProcStat] = []
        // The daemon's descendants only, through /proc/PID/task/TID/children, and below a child only when it is
        // one of ours (marked, or in a recorded group): the cost follows what this supervisor runs, not how many
        // processes the machine or the rest of the daemon has (a test process runs hundreds of other worlds). This
        // walk runs on the epoll thread when a unit stops.
        var queue = ProcStat.childrenOfSelf()
        var seen: Set<Int32> = []
        while let pid = queue.popLast() {
            guard seen.insert(pid).inserted, let process = ProcStat.read(pid: pid), !process.isZombie else { continue }
            all.append(process)
            if let value = ProcStat.environmentValue(pid: process.pid, Self.markerVariable), value.hasPrefix(prefix) {
                result.append((process, String(value.dropFirst(prefix.count))))
            } else if let record = groups[process.processGroup] {
                result.append((process, record.name))
            } else {
                continue
            }
            queue += ProcStat.children(of: pid)
        }
        // Members of the units' cgroups (delegated path) that neither the marker nor the group found.
        if let root = cgroupRoot {
            let known = Set(result.map(\.stat.pid))
            let byPID = Dictionary(all.map { ($0.pid, $0) }, uniquingKeysWith: { a, _ in a })
            for entry in FileSystem.list(root) where entry.hasPrefix(cgroupPrefix) {
                let unit = String(entry.dropFirst(cgroupPrefix.count))
                for pid in CgroupTree.members(root + "/" + entry) where !known.contains(pid) {
                    if let stat = byPID[pid] ?? ProcStat.read(pid: pid), !stat.isZombie { result.append((stat, unit)) }
                }
            }
        }
        return result
    }

    /// The pids of the live processes of unit `name` outside its process group `pgid` (the group itself is
    /// signalled and checked through the pgid).
    func escapedProcesses(of name: String, group pgid: Int32) -> [Int32] {
        liveProcesses().filter { $0.unit == name && $0.stat.processGroup != pgid }.map(\.stat.pid)
    }

    /// Every live process of every unit, by unit name; each unit's main process (its group leader) first, then by
    /// pid. Reads /proc: call it off the bus thread and off the cooperative pool.
    public func processesByUnit() -> [String: [UnitProcess]] {
        var result: [String: [UnitProcess]] = [:]
        for (stat, unit) in liveProcesses() {
            result[unit, default: []].append(UnitProcess(pid: stat.pid, command: ProcStat.commandLine(pid: stat.pid)))
        }
        let leaders = Set(pids.withLock { $0.groups.keys })
        for (unit, list) in result {
            result[unit] = list.sorted { a, b in
                let la = leaders.contains(a.pid), lb = leaders.contains(b.pid)
                return la != lb ? la : a.pid < b.pid
            }
        }
        return result
    }

    /// Kills (SIGKILL) every process of this user that carries a marker of `runtimeDirectory`: what a previous
    /// daemon with this runtime folder left when it was killed, wherever it was re-parented. Each kill is logged.
    /// Returns the pids killed.
    @discardableResult
    public static func reapMarked(runtimeDirectory: String, logger: Logger) -> [Int32] {
        let prefix = runtimeDirectory + "/"
        let me = getpid()
        var killed: [Int32] = []
        for process in ProcStat.all() where !process.isZombie && process.pid != me {
            guard let value = ProcStat.environmentValue(pid: process.pid, markerVariable), value.hasPrefix(prefix)
            else { continue }
            if kill(process.pid, SIGKILL) == 0 {
                killed.append(process.pid)
                logger.notice(
                    "killed leftover process \(process.pid) (\(ProcStat.commandLine(pid: process.pid))) of \"\(value.dropFirst(prefix.count))\" from a previous daemon"
                )
            }
        }
        return killed
    }
}

extension ProcStat {
    /// The children of process `pid` (every thread's /proc/PID/task/TID/children).
    static func children(of pid: Int32) -> [Int32] {
        let tasks = FileSystem.list("/proc/\(pid)/task")
        var result: [Int32] = []
        for task in tasks where Int32(task) != nil {
            guard let text = readSmallFile("/proc/\(pid)/task/\(task)/children") else { continue }
            result += text.split(separator: " ").compactMap { Int32($0) }
        }
        return result
    }

    /// The value of `variable` in /proc/PID/environ (the environment the process was exec'd with); nil when it
    /// is not set or the file cannot be read (another user's process, a process that is gone).
    static func environmentValue(pid: Int32, _ variable: String) -> String? {
        guard let text = readSmallFile("/proc/\(pid)/environ") else { return nil }
        let key = variable + "="
        for entry in text.split(separator: "\0", omittingEmptySubsequences: true) where entry.hasPrefix(key) {
            return String(entry.dropFirst(key.count))
        }
        return nil
    }

    /// The command line of a process, its arguments joined by spaces; `[comm]` for a kernel thread or a process
    /// without one, "" when it is gone.
    static func commandLine(pid: Int32) -> String {
        if let text = readSmallFile("/proc/\(pid)/cmdline"), !text.isEmpty {
            return text.split(separator: "\0", omittingEmptySubsequences: true).joined(separator: " ")
        }
        guard let comm = readSmallFile("/proc/\(pid)/comm") else { return "" }
        return "[" + comm.filter { $0 != "\n" } + "]"
    }
}
