import BerthKit
import Glibc

/// One berthd per runtime folder and one per state folder: an exclusive `flock` on `berthd.lock` in each. The kernel
/// drops the lock when the process dies, so a crash never leaves a stale lock; the file holds the owner's pid (for
/// `berthctl up --force` and for the message a second daemon prints). Both are taken before any plugin starts, and
/// held for the daemon's life: two daemons with other runtime folders but one state folder would otherwise run
/// every plugin against the same state until the bus name stopped one of them.
struct InstanceLock: ~Copyable {
    let fd: Int32
    let path: String

    /// `what` names the folder the lock guards in the message a second daemon prints.
    init(path: String, guarding what: String) throws {
        let folder = FileSystem.directoryName(path)
        try FileSystem.makeDirectories(folder, mode: 0o700)
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        if fd < 0 { throw BerthError.failed("cannot open the lock file \"\(path)\": \(systemErrorText(errno))") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let reason = errno
            let owner = (try? FileSystem.readText(path))?.split(separator: "\n").first.map(String.init) ?? "?"
            close(fd)
            if reason == EWOULDBLOCK {
                throw BerthError.busy(
                    "berthd is already running (pid \(owner)) with the \(what) \"\(folder)\" (lock \"\(path)\")")
            }
            throw BerthError.failed("cannot lock \"\(path)\": \(systemErrorText(reason))")
        }
        ftruncate(fd, 0)
        let text = "\(getpid())\n"
        _ = text.withCString { pwrite(fd, $0, strlen($0), 0) }
        self.fd = fd
        self.path = path
    }

    deinit { close(fd) }
}
