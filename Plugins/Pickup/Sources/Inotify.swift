import BerthKit
import Glibc

/// One inotify event, copied out of the kernel's buffer.
struct InotifyEvent: Sendable, Equatable {
    var wd: Int32
    var mask: UInt32
    var cookie: UInt32
    var name: String

    func has(_ bits: UInt32) -> Bool { mask & bits != 0 }

    static let closeWrite = UInt32(IN_CLOSE_WRITE)
    static let movedTo = UInt32(IN_MOVED_TO)
    static let movedFrom = UInt32(IN_MOVED_FROM)
    static let create = UInt32(IN_CREATE)
    static let delete = UInt32(IN_DELETE)
    static let deleteSelf = UInt32(IN_DELETE_SELF)
    static let moveSelf = UInt32(IN_MOVE_SELF)
    static let ignored = UInt32(IN_IGNORED)
    static let overflow = UInt32(IN_Q_OVERFLOW)
    static let isDirectory = UInt32(IN_ISDIR)
    static let onlyDirectory = UInt32(IN_ONLYDIR)
    /// Everything pickup asks for on every watch; each watch's role decides what it uses.
    static let watchMask = closeWrite | movedTo | movedFrom | create | delete | deleteSelf | moveSelf | onlyDirectory
}

/// The unsafe layer over an inotify instance: the fd, watches, and parsing the kernel's packed event buffer.
/// Nothing else in the plugin touches the raw `inotify_event` layout.
final class Inotify: Sendable {
    let fd: Int32

    init() throws {
        let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else {
            throw BerthError.failed("pickup cannot start inotify: \(SystemError("inotify_init1", errno: errno))")
        }
        self.fd = fd
    }

    deinit { close(fd) }

    /// Adds (or updates) a watch on a directory; returns its watch descriptor.
    func addWatch(_ path: String) throws -> Int32 {
        let wd = inotify_add_watch(fd, path, InotifyEvent.watchMask)
        guard wd >= 0 else { throw SystemError("inotify_add_watch(\"\(path)\")", errno: errno) }
        return wd
    }

    func removeWatch(_ wd: Int32) {
        _ = inotify_rm_watch(fd, wd)
    }

    /// Reads every event available now (the fd is non-blocking).
    func readEvents() -> [InotifyEvent] {
        var events: [InotifyEvent] = []
        let capacity = 64 * 1024
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 8)
        defer { buffer.deallocate() }
        while true {
            let count = read(fd, buffer, capacity)
            if count <= 0 { break }
            events += Self.parse(UnsafeRawBufferPointer(start: buffer, count: count))
        }
        return events
    }

    /// Splits a buffer of packed `struct inotify_event` records (header, then `len` bytes of NUL-padded name).
    static func parse(_ bytes: UnsafeRawBufferPointer) -> [InotifyEvent] {
        let header = MemoryLayout<inotify_event>.size
        var events: [InotifyEvent] = []
        var offset = 0
        while offset + header <= bytes.count {
            let wd = bytes.loadUnaligned(fromByteOffset: offset, as: Int32.self)
            let mask = bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)
            let cookie = bytes.loadUnaligned(fromByteOffset: offset + 8, as: UInt32.self)
            let length = Int(bytes.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self))
            let nameStart = offset + header
            let nameEnd = min(nameStart + length, bytes.count)
            var name = ""
            if nameEnd > nameStart {
                let raw = UnsafeRawBufferPointer(rebasing: bytes[nameStart..<nameEnd])
                let end = raw.firstIndex(of: 0) ?? raw.count
                name = String(decoding: raw[0..<end], as: UTF8.self)
            }
            events.append(InotifyEvent(wd: wd, mask: mask, cookie: cookie, name: name))
            offset = nameStart + length
        }
        return events
    }
}
