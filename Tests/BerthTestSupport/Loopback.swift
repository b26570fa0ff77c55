import BerthKit
import Foundation

/// A TCP socket bound, not listening, to a free port of 127.0.0.1: while it stays open nobody else takes the port
/// and nothing answers on it (a service that never becomes ready). Close the socket to free the port.
public func boundLoopbackSocket() -> (socket: Int32, port: Int) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard Loopback.bind(fd) == 0, let port = Loopback.port(of: fd) else { return (fd, 0) }
    return (fd, Int(port))
}

/// A TCP port of 127.0.0.1 that was free a moment ago (for a server a test starts: nginx, mosquitto, sshd).
public func freePort() -> Int {
    let (fd, port) = boundLoopbackSocket()
    close(fd)
    return port
}
