import Foundation

/// A TCP socket bound, not listening, to a free port of 127.0.0.1: while it stays open nobody else takes the port
/// and nothing answers on it (a service that never becomes ready). Close the socket to free the port.
public func boundLoopbackSocket() -> (socket: Int32, port: Int) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
        }
    }
    return (fd, Int(UInt16(bigEndian: address.sin_port)))
}

/// A TCP port of 127.0.0.1 that was free a moment ago (for a server a test starts: nginx, mosquitto, sshd).
public func freePort() -> Int {
    let (fd, port) = boundLoopbackSocket()
    close(fd)
    return port
}
