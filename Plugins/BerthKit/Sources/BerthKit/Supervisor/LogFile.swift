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

    /// The last `lines` lines of the current file (without line ends); see `LogTail`.
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
