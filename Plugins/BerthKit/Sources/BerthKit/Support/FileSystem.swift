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

    /// The whole file, or nil when it does not exist. Other failures throw.
    public static func read(_ path: String) throws -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw SystemError("cannot open \"\(path)\"", errno: errno)
        }
        defer { close(fd) }
        return try readToEnd(fd, path: path)
    }

    /// Reads an open descriptor to its end in 64 KiB chunks. `stopAfterChunk` runs after each chunk; when it
    /// answers true the read stops and the answer is nil. `path` names the file in the error.
    public static func readToEnd(
        _ fd: Int32, path: String, capacity: Int = 0, stopAfterChunk: () -> Bool = { false }
    ) throws -> [UInt8]? {
        var result: [UInt8] = []
        result.reserveCapacity(capacity)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError("cannot read \"\(path)\"", errno: errno)
            }
            if n == 0 { break }
            result.append(contentsOf: buffer[0..<n])
            if stopAfterChunk() { return nil }
        }
        return result
    }

    public static func readText(_ path: String) throws -> String? {
        try read(path).map { String(decoding: $0, as: UTF8.self) }
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
