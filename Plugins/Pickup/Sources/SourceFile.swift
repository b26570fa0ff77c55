import BerthKit
import Glibc

/// Reads a file dropped into a pickup folder, and only when it is whole: a regular file that no process has open
/// for writing. inotify's close-write says one writer finished; it does not say another is not still writing, and
/// a scan (at start, after an overflow, for a folder just added) has no event at all. So the read holds a read
/// lease (fcntl F_SETLEASE): taking it fails while any process has the file open for writing, and a writer that
/// opens the file during the read breaks it, so bytes read under an unbroken lease are one writer's finished file.
/// Either way the writer's own close-write brings the file back once it is done.
///
/// Where a lease cannot be taken (a file owned by another user without CAP_LEASE, a file system without leases)
/// the read falls back to comparing the file's size and change time before and after.
enum SourceFile {
    enum Read: Sendable {
        case whole([UInt8])
        /// Gone again (moved on or deleted before it was read).
        case gone
        /// A FIFO, socket, device or a file of /proc or /sys: never read (a FIFO would block the reader, a device
        /// or `/proc/self/pagemap` never ends). The reason completes a sentence: `is a FIFO, not a regular file`.
        case notRegular(String)
        /// Some process has it open for writing, or opened it while it was being read.
        case openForWriting
    }

    // <fcntl.h> with _GNU_SOURCE, which the Glibc module does not import: F_LINUX_SPECIFIC_BASE (1024) + 0 and + 1,
    // and F_SETSIG (10 on every Linux architecture that uses the asm-generic numbers, x86_64 and aarch64 included).
    private static let setLease: Int32 = 1024
    private static let getLease: Int32 = 1025
    private static let setSignal: Int32 = 10

    /// Reads `path` when it is whole, at most `limit` bytes: a larger file (by its size, or by what the read finds)
    /// throws a `FileRefusal` of kind `.tooLarge` naming the path, its size and the limit, before a byte is kept.
    static func read(_ path: String, limit: Int) throws -> Read {
        // Opening never waits (O_NONBLOCK: a FIFO without a writer), and a FIFO, socket, device or kernel file is
        // passed over before a byte is read.
        let fd: Int32
        do {
            guard let opened = try FileSystem.openForReading(path) else { return .gone }
            fd = opened
        } catch let refusal as FileRefusal {
            return .notRegular(refusal.reason)
        } catch let error as SystemError where error.errno == ENOTDIR {
            return .gone
        } catch let error as SystemError {
            throw SystemError("pickup cannot open \"\(path)\"", errno: error.errno)
        }
        defer { close(fd) }
        let before: stat
        do {
            before = try FileSystem.checkReadable(fd, path: path, limit: limit)
        } catch let refusal as FileRefusal where refusal.kind == .notRegular {
            return .notRegular(refusal.reason)
        }

        // A lease break must not signal the daemon with SIGIO (which would end it): SIGURG is ignored by default.
        _ = fcntl(fd, setSignal, SIGURG)
        let leased: Bool
        if fcntl(fd, setLease, Int32(F_RDLCK)) == 0 {
            leased = true
        } else if errno == EAGAIN {
            return .openForWriting
        } else {
            leased = false  // EACCES (not the owner), EINVAL (no leases here): the stat comparison below
        }
        defer {
            if leased { _ = fcntl(fd, setLease, Int32(F_UNLCK)) }
        }
        // A writer opening the file breaks the lease and waits for us: stop at once and let it write.
        guard
            let bytes = try FileSystem.readToEnd(
                fd, path: path, limit: limit, stopAfterChunk: { leased && fcntl(fd, getLease) != Int32(F_RDLCK) })
        else { return .openForWriting }
        if leased {
            if fcntl(fd, getLease) != Int32(F_RDLCK) { return .openForWriting }
        } else {
            var after = stat()
            guard fstat(fd, &after) == 0 else { throw SystemError("pickup cannot stat \"\(path)\"", errno: errno) }
            if after.st_size != before.st_size || after.st_ctim.tv_sec != before.st_ctim.tv_sec
                || after.st_ctim.tv_nsec != before.st_ctim.tv_nsec
            {
                return .openForWriting
            }
        }
        return .whole(bytes)
    }
}
