import CBerthShim
import Glibc
import Synchronization

/// Reaps the zombies nobody else will: grandchildren of supervised processes that were re-parented to the
/// daemon (a child subreaper). SIGCHLD wakes the epoll thread through an eventfd; each wake-up sweeps the
/// daemon's children (/proc/self/task/*/children) and reaps a zombie only when
/// - its pid is not a tracked main process (those are reaped through their pidfd, with their status), and
/// - it belongs to a supervised process group, or to another session than the daemon's (a double-forked daemon).
/// Children that other code in the daemon spawned in the daemon's own session and group are left alone, so a
/// `waitpid` elsewhere never loses its status.
final class ChildReaper: Sendable {
    static let shared = ChildReaper()

    private struct State {
        var tracked: Set<Int32> = []
        var groups: Set<Int32> = []
        var eventFD: Int32 = -1
    }
    private let state = Mutex(State())

    /// Installs the SIGCHLD handler and the eventfd watch (once).
    func install(watcher: FDWatcher = .shared) throws {
        let fd = cberth_eventfd_create()
        guard fd >= 0 else { throw SystemError("eventfd", errno: errno) }
        let installed = state.withLock { state -> Bool in
            if state.eventFD >= 0 { return false }
            state.eventFD = fd
            return true
        }
        guard installed else {
            close(fd)
            return
        }
        _ = try watcher.watch(fd: fd, events: .readable) { [self] _ in
            var value: UInt64 = 0
            _ = read(fd, &value, 8)
            sweep()
        }
        if cberth_install_sigchld_eventfd(fd) != 0 { throw SystemError("sigaction(SIGCHLD)", errno: errno) }
    }

    func track(_ pid: Int32) { _ = state.withLock { $0.tracked.insert(pid) } }
    func untrack(_ pid: Int32) { _ = state.withLock { $0.tracked.remove(pid) } }
    func addGroup(_ pgid: Int32) { _ = state.withLock { $0.groups.insert(pgid) } }
    func removeGroup(_ pgid: Int32) { _ = state.withLock { $0.groups.remove(pgid) } }

    /// Reaps every eligible zombie child. Runs on the epoll thread.
    func sweep() {
        let ownSession = getsid(0)
        let (tracked, groups) = state.withLock { ($0.tracked, $0.groups) }
        for pid in ProcStat.childrenOfSelf() where !tracked.contains(pid) {
            guard let stat = ProcStat.read(pid: pid), stat.isZombie else { continue }
            guard groups.contains(stat.processGroup) || stat.session != ownSession else { continue }
            var status: Int32 = 0
            _ = cberth_reap(pid, &status)
        }
    }
}
