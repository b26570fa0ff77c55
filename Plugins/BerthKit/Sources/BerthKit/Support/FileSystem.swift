import CBerthShim
import Glibc

/// Small, honest file operations for state on disk: every write is atomic (temp file, fsync, rename, fsync of
/// the folder), so `kill -9` at any moment leaves either the old or the new content.
public enum FileSystem {
    /// Creates `path` and its missing parents.
    public static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, mode) != 0 && errno != EEXIST {
                throw SystemError("cannot create the folder \"\(current)\"", errno: errno)
            }
        }
        guard isDirectory(path) else { throw SystemError("\"\(path)\" is not a folder", errno: ENOTDIR) }
    }

    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    public static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    public static func isExecutableFile(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG && access(path, X_OK) == 0
    }

    // MARK: - Reading, bounded

    /// The default limit of `read` and `readText`: far beyond any state or configuration file berth keeps.
    public static let defaultReadLimit = 64 << 20

    /// The whole file, or nil when it does not exist. Only a regular file of at most `limit` bytes is read:
    /// anything else throws a `FileRefusal` naming the path (see `readToEnd`); other failures a `SystemError`.
    public static func read(_ path: String, limit: Int = defaultReadLimit) throws -> [UInt8]? {
        guard let fd = try openForReading(path) else { return nil }
        defer { close(fd) }
        return try readToEnd(fd, path: path, limit: limit)
    }

    /// The whole file as UTF-8 text (invalid bytes replaced), or nil when it does not exist; as `read`.
    public static func readText(_ path: String, limit: Int = defaultReadLimit) throws -> String? {
        try read(path, limit: limit).map { String(decoding: $0, as: UTF8.self) }
    }

    /// A small file of the kernel (`/proc/<pid>/stat`, `/sys/...`) as text, or nil when it does not exist. Such a
    /// file says it is empty or gives a size that is not its content, so only the bytes read count: more than
    /// `limit` throws. `read` refuses these files.
    public static func readKernelText(_ path: String, limit: Int = 1 << 20) throws -> String? {
        guard let fd = try openForReading(path) else { return nil }
        defer { close(fd) }
        return try readToEnd(fd, path: path, limit: limit, kernelFiles: true).map {
            String(decoding: $0, as: UTF8.self)
        }
    }

    /// Opens `path` for reading without waiting: `O_NONBLOCK` so that a FIFO with no writer does not hold the
    /// caller (the descriptor is then refused by `readToEnd`), `O_NOCTTY` so that a terminal is never taken over.
    /// nil when the file does not exist; a socket (which cannot be opened) is a `FileRefusal`.
    public static func openForReading(_ path: String) throws -> Int32? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        if fd >= 0 { return fd }
        switch errno {
        case ENOENT: return nil
        case ENXIO: throw FileRefusal(.notRegular, path: path, reason: "is a socket, not a regular file")
        default: throw SystemError("cannot open \"\(path)\"", errno: errno)
        }
    }

    /// Checks the file open on `fd` before it is read: a regular file (not a FIFO, socket, device or folder), not
    /// a file of the kernel's own file systems (procfs, sysfs and their kin, whose sizes are not their content:
    /// `/proc/self/pagemap` says 0 bytes and never ends) unless `kernelFiles`, and by its size at most `limit`
    /// bytes. Returns its `stat`. A refusal is a `FileRefusal` naming `path`, the size and the limit.
    @discardableResult
    public static func checkReadable(_ fd: Int32, path: String, limit: Int, kernelFiles: Bool = false) throws -> stat {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw SystemError("cannot stat \"\(path)\"", errno: errno) }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw FileRefusal(.notRegular, path: path, reason: "is \(kindName(info.st_mode)), not a regular file")
        }
        if !kernelFiles, let system = kernelFileSystem(fd) {
            throw FileRefusal(
                .notRegular, path: path,
                reason: "is a file of \(system), whose size says nothing of its content, not a regular file")
        }
        if Int64(info.st_size) > Int64(limit) {
            throw FileRefusal(
                .tooLarge, path: path,
                reason: "is \(describeSize(Int64(info.st_size))), over the limit of \(describeSize(Int64(limit)))")
        }
        return info
    }

    /// Reads an open descriptor to its end in chunks of at most 64 KiB, once `checkReadable` accepts it, and
    /// stops with a `FileRefusal` as soon as more than `limit` bytes came (a file that grew, or a kernel file
    /// whose size was no guide). `stopAfterChunk` runs after each chunk; when it answers true the read stops and
    /// the answer is nil. `path` names the file in errors.
    public static func readToEnd(
        _ fd: Int32, path: String, limit: Int, kernelFiles: Bool = false, stopAfterChunk: () -> Bool = { false }
    ) throws -> [UInt8]? {
        let info = try checkReadable(fd, path: path, limit: limit, kernelFiles: kernelFiles)
        var result: [UInt8] = []
        result.reserveCapacity(Int(info.st_size))  // at most the limit, checked above
        // Whole chunks (some kernel files take reads of 8-byte multiples only); a chunk that would carry the result
        // past the limit is dropped, never kept.
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError("cannot read \"\(path)\"", errno: errno)
            }
            if n == 0 { break }
            if n > limit - result.count {
                throw FileRefusal(
                    .tooLarge, path: path,
                    reason: "holds more than the limit of \(describeSize(Int64(limit))) "
                        + "(its size said \(describeSize(Int64(info.st_size))) when the read began)")
            }
            result.append(contentsOf: buffer[0..<n])
            if stopAfterChunk() { return nil }
        }
        return result
    }

    /// "a FIFO", "a socket", "a character device", "a block device", "a folder", "a symbolic link".
    public static func kindName(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFREG: return "a regular file"
        case S_IFIFO: return "a FIFO"
        case S_IFSOCK: return "a socket"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFDIR: return "a folder"
        case S_IFLNK: return "a symbolic link"
        default: return "not a regular file"
        }
    }

    /// `12 bytes`, `1048576 bytes (1 MiB)`, `1099511627776 bytes (1 TiB)`, `1500000 bytes (1.4 MiB)`.
    public static func describeSize(_ bytes: Int64) -> String {
        let units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        guard bytes >= 1024 else { return bytes == 1 ? "1 byte" : "\(bytes) bytes" }
        var value = Double(bytes)
        var unit = -1
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        let tenths = (value * 10).rounded()
        let shown = tenths.truncatingRemainder(dividingBy: 10) == 0 ? String(Int(tenths / 10)) : String(tenths / 10)
        return "\(bytes) bytes (\(shown) \(units[unit]))"
    }

    /// The kernel file systems whose files are not data at rest, by `statfs` magic (<linux/magic.h>).
    private static let kernelFileSystems: [Int: String] = [
        0x9fa0: "procfs (/proc)", 0x6265_6572: "sysfs (/sys)", 0x6462_6720: "debugfs", 0x7472_6163: "tracefs",
        0x7363_6673: "securityfs", 0x0027_e0eb: "cgroupfs", 0x6367_7270: "cgroup2fs", 0x6265_6570: "configfs",
        0xde5e_81e4: "efivarfs", 0x6165_676c: "pstore", 0xcafe_4a11: "bpffs", 0xf97c_ff8c: "selinuxfs",
    ]

    /// The name of the kernel file system `fd` is on (procfs, sysfs, ...: files whose size is not their content),
    /// or nil for an ordinary one. `checkReadable` refuses these; a reader of descriptors it did not open asks here.
    public static func kernelFileSystem(_ fd: Int32) -> String? {
        let magic = cberth_fs_magic(fd)
        guard magic != -1 else { return nil }
        return kernelFileSystems[Int(UInt32(truncatingIfNeeded: magic))]
    }

    /// Replaces `path` atomically with `bytes` (temp file in the same folder, fsync, rename, fsync the folder).
    public static func writeAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws {
        let dir = directoryName(path)
        let temp = "\(dir)/.\(baseName(path)).\(getpid()).tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        if fd < 0 { throw SystemError("cannot create \"\(temp)\"", errno: errno) }
        var ok = false
        defer {
            if !ok { unlink(temp) }
        }
        do {
            defer { close(fd) }
            try writeAll(fd, bytes, path: temp)
            if fsync(fd) != 0 { throw SystemError("cannot sync \"\(temp)\"", errno: errno) }
        }
        if rename(temp, path) != 0 { throw SystemError("cannot rename \"\(temp)\" to \"\(path)\"", errno: errno) }
        ok = true
        syncDirectory(dir)
    }

    public static func writeAtomically(_ path: String, text: String, mode: mode_t = 0o644) throws {
        try writeAtomically(path, Array(text.utf8), mode: mode)
    }

    /// Writes every byte, retrying short writes and EINTR.
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError("cannot write \"\(path)\"", errno: errno)
            }
            offset += n
        }
    }

    public static func syncDirectory(_ dir: String) {
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }

    /// Names in a folder (no `.`/`..`), sorted; empty when it does not exist.
    public static func list(_ dir: String) -> [String] {
        guard let handle = opendir(dir) else { return [] }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Removes a file or a whole folder tree; missing is fine.
    public static func removeTree(_ path: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            for name in list(path) { try removeTree(path + "/" + name) }
            if rmdir(path) != 0 && errno != ENOENT { throw SystemError("cannot remove \"\(path)\"", errno: errno) }
        } else if unlink(path) != 0 && errno != ENOENT {
            throw SystemError("cannot remove \"\(path)\"", errno: errno)
        }
    }

    public static func directoryName(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    public static func baseName(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    /// `path` made absolute against the current folder (no symlink resolution).
    public static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buffer, buffer.count) != nil else { return path }
        let cwd = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return path == "." ? cwd : cwd + "/" + (path.hasPrefix("./") ? String(path.dropFirst(2)) : path)
    }

    /// The path of the running executable (/proc/self/exe).
    public static func executablePath() -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// A file that `FileSystem` would not read, and why: it is no regular file (a FIFO would block the reader, a
/// device or a file of /proc never ends), or it is larger than the reader's limit.
public struct FileRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// A FIFO, socket, device, folder or a file of a kernel file system.
        case notRegular
        /// Larger than the limit, by its size or by what was read.
        case tooLarge
    }

    public var kind: Kind
    public var path: String
    /// The rest of the sentence after the quoted path: `is a FIFO, not a regular file`.
    public var reason: String

    public init(_ kind: Kind, path: String, reason: String) {
        self.kind = kind
        self.path = path
        self.reason = reason
    }

    /// `"/srv/drop/big.bin" is 1099511627776 bytes (1 TiB), over the limit of 268435456 bytes (256 MiB)`.
    public var description: String { "\"\(path)\" \(reason)" }
}
