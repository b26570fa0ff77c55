import BerthKit
import Glibc

/// One probe of an instance's health, without blocking a thread: a non-blocking socket whose readiness the
/// FDWatcher's epoll thread reports. `http:PATH` passes on a 2xx status line, `tcp` when the port accepts.
enum HealthProbe {
    /// nil when it passed, else the reason it did not.
    static func http(port: Int, path: String, timeout: Duration) async -> String? {
        await withDeadline(timeout, "http://127.0.0.1:\(port)\(path) did not answer within \(timeout)") {
            let fd = try await connect(port: port)
            defer { close(fd) }
            let request = Array(
                "GET \(path) HTTP/1.0\r\nHost: 127.0.0.1:\(port)\r\nUser-Agent: berth-health\r\n\r\n".utf8)
            var sent = 0
            while sent < request.count {
                let n = request.withUnsafeBytes {
                    send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL))
                }
                if n > 0 {
                    sent += n
                    continue
                }
                if n < 0 && (errno == EAGAIN || errno == EINTR) {
                    await FDWatcher.shared.wait(fd: fd, for: .writable)
                    continue
                }
                return "http://127.0.0.1:\(port)\(path): cannot send: \(systemErrorText(errno))"
            }
            var head: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 1024)
            while !head.contains(10) && head.count < 4096 {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n > 0 {
                    head += buffer[0..<n]
                    continue
                }
                if n < 0 && (errno == EAGAIN || errno == EINTR) {
                    if Task.isCancelled { return "canceled" }
                    await FDWatcher.shared.wait(fd: fd, for: .readable)
                    continue
                }
                return "http://127.0.0.1:\(port)\(path) closed the connection without a status line"
            }
            let line = String(decoding: head.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
            let parts = line.split(separator: " ")
            guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), let status = Int(parts[1]) else {
                return "http://127.0.0.1:\(port)\(path) answered \"\(line)\", not HTTP"
            }
            return (200..<300).contains(status) ? nil : "http://127.0.0.1:\(port)\(path) answered \(status)"
        }
    }

    static func tcp(port: Int, timeout: Duration) async -> String? {
        await withDeadline(timeout, "127.0.0.1:\(port) did not accept within \(timeout)") {
            close(try await connect(port: port))
            return nil
        }
    }

    /// A connected non-blocking socket to 127.0.0.1:port; throws the reason otherwise.
    static func connect(port: Int) async throws -> Int32 {
        let fd = socket(
            AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw BerthError.failed("socket: \(systemErrorText(errno))") }
        let r = Loopback.connect(fd, port: UInt16(port))
        if r != 0 && errno != EINPROGRESS {
            let e = errno
            close(fd)
            throw BerthError.failed("127.0.0.1:\(port) refused the connection: \(systemErrorText(e))")
        }
        if r != 0 {
            await FDWatcher.shared.wait(fd: fd, for: .writable)
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
            if error != 0 || Task.isCancelled {
                close(fd)
                throw BerthError.failed("127.0.0.1:\(port) refused the connection: \(systemErrorText(error))")
            }
        }
        return fd
    }

    /// Runs `body` and gives `message` when it takes longer than `timeout`. Errors become their message.
    static func withDeadline(
        _ timeout: Duration, _ message: String, _ body: @escaping @Sendable () async throws -> String?
    ) async -> String? {
        await withTaskGroup(of: String??.self) { group in
            group.addTask {
                do { return .some(try await body()) } catch { return .some(BerthError.wrapping(error).message) }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return .none
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? message
        }
    }
}
