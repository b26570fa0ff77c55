import BerthKit
import BerthTestSupport
import Glibc
import Synchronization
import Testing

/// A `.unixFD` read from a message is a duplicate the receiver owns: it stays open (and readable) after sd-bus
/// has freed the message and closed the message's own descriptor.
@Suite struct BusFileDescriptorTests {
    static let iface = "org.berth.Test.FD"

    /// A pipe whose write end has `text` written and is closed: the read end, then EOF.
    static func pipeHolding(_ text: String) throws -> Int32 {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw TestFailure("pipe2 failed") }
        let written = text.withCString { write(fds[1], $0, strlen($0)) }
        Glibc.close(fds[1])
        guard written == text.utf8.count else { throw TestFailure("short write to the pipe") }
        return fds[0]
    }

    static func readAll(_ fd: Int32) -> String? {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 256)
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n < 0 { return nil }  // EBADF: the descriptor was closed under us
            if n == 0 { break }
            bytes += buffer[..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func isOpen(_ fd: Int32) -> Bool { fcntl(fd, F_GETFD) >= 0 }

    @Test func methodArgumentDescriptorOutlivesTheMessage() async throws {
        try await BusPair.with { bus in
            let received = Mutex<Int32?>(nil)
            let iface = BusInterface(Self.iface, methods: [
                .sync("Take", in: [BusArg("fd", "h")]) { call in
                    received.withLock { $0 = call.fileDescriptor(0) }
                    return []
                },
            ])
            let object = try await bus.server.export(path: "/fd", interfaces: [iface])
            defer { object.remove() }
            let mine = try Self.pipeHolding("through the bus")
            defer { Glibc.close(mine) }
            _ = try await bus.call("/fd", Self.iface, "Take", [.unixFD(mine)])
            // The reply came back: the server has freed the call message (and closed the fd sd-bus received).
            try await Task.sleep(for: .milliseconds(50))
            let fd = try #require(received.withLock { $0 })
            defer { Glibc.close(fd) }
            #expect(fd != mine)
            #expect(Self.isOpen(fd), "the handler's descriptor was closed with the message")
            #expect(fcntl(fd, F_GETFD) & FD_CLOEXEC != 0, "the duplicate is close-on-exec")
            #expect(Self.readAll(fd) == "through the bus")
            // Sending does not take the sender's descriptor either.
            #expect(Self.isOpen(mine))
        }
    }

    @Test func replyDescriptorOutlivesTheReply() async throws {
        try await BusPair.with { bus in
            let given = Mutex<Int32?>(nil)
            let iface = BusInterface(Self.iface, methods: [
                .sync("Give", out: [BusArg("fd", "h")]) { _ in
                    let fd = try Self.pipeHolding("from the server")
                    given.withLock { $0 = fd }  // sd-bus sends its own duplicate: the server still owns this one
                    return [.unixFD(fd)]
                },
            ])
            let object = try await bus.server.export(path: "/fd", interfaces: [iface])
            defer { object.remove() }
            let reply = try await bus.call("/fd", Self.iface, "Give")
            if let fd = given.withLock({ $0 }) { Glibc.close(fd) }
            guard case .unixFD(let fd)? = reply.first else {
                Issue.record("no descriptor in \(reply)")
                return
            }
            defer { Glibc.close(fd) }
            try await Task.sleep(for: .milliseconds(50))
            #expect(Self.isOpen(fd), "the reply's descriptor was closed with the reply message")
            #expect(Self.readAll(fd) == "from the server")
        }
    }
}
