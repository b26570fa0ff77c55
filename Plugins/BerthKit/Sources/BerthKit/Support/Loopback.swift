import Glibc

/// TCP on 127.0.0.1: the address every local probe, health check and port check uses, built in one place.
public enum Loopback {
    /// `connect(2)` of socket `fd` to 127.0.0.1:`port`; its result (-1 with `errno` set on failure).
    public static func connect(_ fd: Int32, port: UInt16) -> Int32 {
        withAddress(port) { Glibc.connect(fd, $0, $1) }
    }

    /// `bind(2)` of socket `fd` to 127.0.0.1:`port` (0: a free port the kernel picks); its result.
    public static func bind(_ fd: Int32, port: UInt16 = 0) -> Int32 {
        withAddress(port) { Glibc.bind(fd, $0, $1) }
    }

    /// The port socket `fd` is bound to (`getsockname(2)`); nil when it cannot be read.
    public static func port(of fd: Int32) -> UInt16? {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let r = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return r == 0 ? UInt16(bigEndian: address.sin_port) : nil
    }

    private static func withAddress(_ port: UInt16, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32) -> Int32 {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }
}
