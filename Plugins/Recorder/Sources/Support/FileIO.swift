import BerthKit
import Glibc

/// Thin file-system calls over Glibc whose failures are BerthErrors naming the path: ENOSPC is `storageFull`,
/// EACCES/EPERM/EROFS `accessDenied`, ENOENT `notFound`, anything else `failed`.
enum FileIO {
    static func error(_ operation: String, _ path: String, _ code: Int32 = errno) -> BerthError {
        let message = "\(operation) \"\(path)\": \(systemErrorText(code))"
        switch code {
        case ENOSPC, EDQUOT: return .init(.storageFull, message)
        case EACCES, EPERM, EROFS: return .init(.accessDenied, message)
        case ENOENT: return .init(.notFound, message)
        default: return .init(.failed, message)
        }
    }

    /// The whole file, refusing files larger than `limit` bytes.
    static func readAll(path: String, limit: Int) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw error("cannot open", path) }
        defer { close(fd) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw error("cannot read", path)
            }
            if n == 0 { return result }
            result.append(contentsOf: chunk[0..<n])
            if result.count > limit { throw BerthError.failed("file \"\(path)\" is larger than \(limit) bytes") }
        }
    }

    /// Writes all of `bytes` at the current position (or at `offset` with pwrite).
    static func writeAll(fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int64? = nil, path: String) throws {
        var done = 0
        while done < bytes.count {
            let pointer = bytes.baseAddress! + done
            let n =
                if let offset { pwrite(fd, pointer, bytes.count - done, off_t(offset) + off_t(done)) } else {
                    write(fd, pointer, bytes.count - done)
                }
            if n < 0 {
                if errno == EINTR { continue }
                throw error("cannot write", path)
            }
            done += n
        }
    }

    /// `mkdir -p`.
    static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws {
        var prefix = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            prefix += "/" + part
            if mkdir(prefix, mode) != 0 && errno != EEXIST { throw error("cannot create folder", prefix) }
        }
        guard isDirectory(path) else { throw BerthError.failed("\"\(path)\" exists and is not a folder") }
    }

    static func isDirectory(_ path: String) -> Bool { FileSystem.isDirectory(path) }

    /// Size in bytes, or nil when the file does not exist.
    static func fileSize(_ path: String) -> Int64? {
        var info = stat()
        return stat(path, &info) == 0 ? Int64(info.st_size) : nil
    }

    /// Makes a rename or a new file in `path` durable.
    static func syncDirectory(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw error("cannot open folder", path) }
        defer { close(fd) }
        if fsync(fd) != 0 && errno != EINVAL { throw error("cannot sync folder", path) }
    }

    static func rename(_ from: String, to: String) throws {
        if Glibc.rename(from, to) != 0 { throw error("cannot rename to \"\(to)\"", from) }
    }

    /// Removes a file; a file already gone is fine.
    static func remove(_ path: String) throws {
        if unlink(path) != 0 && errno != ENOENT { throw error("cannot remove", path) }
    }

    /// Names in a folder (without `.` and `..`), unsorted; empty when the folder does not exist.
    static func listDirectory(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else {
            if errno == ENOENT { return [] }
            throw error("cannot list folder", path)
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Bytes available to an unprivileged user on the filesystem holding `path`.
    static func freeBytes(_ path: String) throws -> UInt64 {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { throw error("cannot read free space of", path) }
        return UInt64(info.f_bavail) * UInt64(info.f_frsize)
    }
}
