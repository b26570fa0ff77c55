import Glibc
import Synchronization

/// A unit's log: appended to by the supervisor (which reads the child's stdout and stderr from a pipe), rotated by
/// size (`x.log` → `x.log.1` … `x.log.N`, the oldest dropped), reopened on request for an external logrotate, and
/// tailed for `Logs(lines)`.
final class LogFile: Sendable {
    let path: String
    let maxBytes: Int
    let keep: Int
    private struct State {
        var fd: Int32
        var size: Int
    }
    private let state: Mutex<State>

    init(path: String, maxBytes: Int, keep: Int) throws {
        self.path = path
        self.maxBytes = maxBytes
        self.keep = max(keep, 0)
        state = Mutex(State(fd: try Self.open(path), size: 0))
        state.withLock { $0.size = Self.size(of: $0.fd) }
    }

    deinit {
        _ = state.withLock { close($0.fd) }
    }

    /// Appends bytes. With a size limit, a chunk is split so that each file stays within `maxBytes`: at the last
    /// line end that fits, or (a single line longer than the limit) at the limit itself.
    func append(_ bytes: UnsafeRawBufferPointer) {
        state.withLock { state in
            var rest = bytes[...]
            while !rest.isEmpty {
                var piece = rest
                if maxBytes > 0 && state.size + rest.count > maxBytes {
                    let room = max(maxBytes - state.size, 0)
                    let window = rest.prefix(room)
                    if let newline = window.lastIndex(of: 10) {
                        piece = rest[...newline]
                    } else if state.size > 0 {
                        rotate(&state)
                        continue
                    } else {
                        piece = rest.prefix(maxBytes)
                    }
                }
                guard write(UnsafeRawBufferPointer(rebasing: piece), &state) else { return }
                rest = rest[piece.endIndex...]
            }
        }
    }

    /// Writes all of `bytes`; false when the file refuses (disk full...): the rest is dropped rather than
    /// blocking the epoll thread.
    private func write(_ bytes: UnsafeRawBufferPointer, _ state: inout State) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = Glibc.write(state.fd, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 && errno == EINTR { continue }
            if written <= 0 { return false }
            offset += written
            state.size += written
        }
        return true
    }

    /// Closes and reopens the path (after an external tool moved the file away).
    func reopen() throws {
        let fd = try Self.open(path)
        state.withLock { state in
            close(state.fd)
            state.fd = fd
            state.size = Self.size(of: fd)
        }
    }

    /// The last `lines` lines of the current file (without line ends); see `LogTail` below.
    func tail(lines: Int) -> [String] { LogTail.read(path: path, lines: lines) }

    private func rotate(_ state: inout State) {
        close(state.fd)
        if keep == 0 {
            unlink(path)
        } else {
            unlink("\(path).\(keep)")
            for index in stride(from: keep - 1, through: 1, by: -1) { rename("\(path).\(index)", "\(path).\(index + 1)") }
            rename(path, "\(path).1")
        }
        state.fd = (try? Self.open(path)) ?? Glibc.open("/dev/null", O_WRONLY | O_CLOEXEC)
        state.size = 0
    }

    private static func open(_ path: String) throws -> Int32 {
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw BerthError.failed("cannot open the log file \"\(path)\": \(systemErrorText(errno))") }
        return fd
    }

    private static func size(of fd: Int32) -> Int {
        var info = stat()
        return fstat(fd, &info) == 0 ? Int(info.st_size) : 0
    }
}


/// Reads the end of a log file for `Logs(lines)`: backwards from the end in fixed chunks, never more than
/// `maxBytes` in all, in time linear in what it reads (each byte is read once and scanned for line ends with
/// `memchr`). A line longer than `maxLineBytes` is cut and marked; so is the oldest line when its start lies beyond
/// `maxBytes`.
enum LogTail {
    /// At most this much of the file is read for one call (4 MiB).
    static let defaultMaxBytes = 4 << 20
    /// A longer line is cut to this many bytes (64 KiB) and marked.
    static let defaultMaxLineBytes = 64 << 10
    static let chunk = 64 << 10

    static func read(
        path: String, lines: Int, maxBytes: Int = defaultMaxBytes, maxLineBytes: Int = defaultMaxLineBytes
    ) -> [String] {
        guard lines > 0, maxBytes > 0 else { return [] }
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return [] }
        let size = Int(info.st_size)
        let window = min(size, maxBytes)
        guard window > 0 else { return [] }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: window, alignment: 1)
        defer { buffer.deallocate() }
        let base = buffer.baseAddress!
        // Fill the buffer from its end backwards; `first` is the offset of the oldest byte read so far.
        var first = window
        var newlines = 0
        let endsWithNewline = lastByte(fd, size) == 10
        // `lines` whole lines need `lines` line ends before the last line (plus the file's own final one).
        let wanted = lines + (endsWithNewline ? 1 : 0)
        while first > 0 && newlines < wanted {
            let length = min(chunk, first)
            let got = pread(fd, base + first - length, length, off_t(size - (window - first) - length))
            if got < 0 && errno == EINTR { continue }
            guard got == length else { break }  // the file shrank (rotated): keep what was read
            first -= length
            newlines += lineEnds(base, from: first, to: first + length).count
        }
        // The lines in the window as byte ranges, oldest first.
        var starts = [first]
        var ends: [Int] = []
        for end in lineEnds(base, from: first, to: window) {
            ends.append(end)
            starts.append(end + 1)
        }
        ends.append(window)
        if endsWithNewline {  // the empty piece after the file's final line end
            starts.removeLast()
            ends.removeLast()
        }
        // The oldest piece is a whole line only when it starts the file or follows a line end that was read.
        let startOfFile = size - (window - first) == 0
        let firstIsPartial = !startOfFile && newlines < wanted
        let from = max(startOfFile || firstIsPartial ? 0 : 1, starts.count - lines)
        var result: [String] = []
        result.reserveCapacity(max(starts.count - from, 0))
        for index in from..<starts.count {
            let line = UnsafeRawBufferPointer(start: base + starts[index], count: ends[index] - starts[index])
            if index == 0 && firstIsPartial {
                let shown = UnsafeRawBufferPointer(rebasing: line[max(line.count - maxLineBytes, 0)...])
                result.append("[cut: the start of this line is more than \(maxBytes) bytes back] " + text(shown))
            } else if line.count > maxLineBytes {
                let shown = UnsafeRawBufferPointer(rebasing: line[..<maxLineBytes])
                result.append(text(shown) + " [cut: line of \(line.count) bytes]")
            } else {
                result.append(text(line))
            }
        }
        return result
    }

    /// The offsets of the line ends (`\n`) in `base[from..<to]`.
    private static func lineEnds(_ base: UnsafeMutableRawPointer, from: Int, to: Int) -> [Int] {
        var found: [Int] = []
        var offset = from
        while offset < to, let hit = memchr(base + offset, 10, to - offset) {
            let end = base.distance(to: hit)
            found.append(end)
            offset = end + 1
        }
        return found
    }

    private static func text(_ bytes: UnsafeRawBufferPointer) -> String { String(decoding: bytes, as: UTF8.self) }

    private static func lastByte(_ fd: Int32, _ size: Int) -> UInt8? {
        guard size > 0 else { return nil }
        var byte: UInt8 = 0
        return pread(fd, &byte, 1, off_t(size - 1)) == 1 ? byte : nil
    }
}
