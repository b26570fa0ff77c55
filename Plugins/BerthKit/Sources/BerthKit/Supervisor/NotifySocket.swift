import CBerthShim
import Glibc

/// A per-run `SOCK_DGRAM` unix socket for the sd_notify protocol, bound at a path in the runtime folder and passed
/// to the child as `NOTIFY_SOCKET`. `SO_PASSCRED` makes the kernel attach each sender's pid and uid, so messages
/// can be limited to the child's process group.
final class NotifySocket: Sendable {
    let path: String
    let fd: Int32

    struct Datagram {
        var text: String
        var senderPID: Int32
        var senderUID: UInt32
    }

    init(path: String) throws {
        self.path = path
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw BerthError.failed("cannot create a notify socket: \(systemErrorText(errno))") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else {
            Glibc.close(fd)
            throw BerthError.failed("the notify socket path \"\(path)\" is longer than \(capacity - 1) bytes")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        unlink(path)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        var on: Int32 = 1
        guard bound == 0, setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, socklen_t(MemoryLayout<Int32>.size)) == 0
        else {
            let code = errno
            Glibc.close(fd)
            throw BerthError.failed("cannot bind the notify socket \"\(path)\": \(systemErrorText(code))")
        }
        self.fd = fd
    }

    /// Every datagram waiting (non-blocking).
    func receiveAll() -> [Datagram] {
        var result: [Datagram] = []
        var buffer = [CChar](repeating: 0, count: 4096)
        while true {
            var pid: pid_t = 0
            var uid: uid_t = 0
            let count = cberth_recv_with_credentials(fd, &buffer, buffer.count, &pid, &uid)
            if count < 0 { break }
            let text = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            result.append(Datagram(text: text, senderPID: pid, senderUID: uid))
        }
        return result
    }

    /// Closes the socket and removes its path.
    func close() {
        Glibc.close(fd)
        unlink(path)
    }
}
