import BerthKit
import BerthTestSupport
import Glibc
import Synchronization
import Testing

/// Closing a connection (or losing its peer) ends every call in flight at once, and a closed connection gives
/// back what it held: the bus socket, the eventfd and its thread.
@Suite(.serialized) struct BusCloseTests {
    static let iface = "org.berth.Test.Close"

    static func neverReplies() -> BusInterface {
        BusInterface(iface, methods: [
            .async("Never") { _ in
                try await Task.sleep(for: .seconds(120))
                return []
            },
            .sync("Quick") { _ in [] },
        ])
    }

    static func openDescriptors() -> Int {
        guard let dir = opendir("/proc/self/fd") else { return -1 }
        defer { closedir(dir) }
        var count = 0
        while readdir(dir) != nil { count += 1 }
        return count
    }

    static func threadCount() -> Int {
        guard let dir = opendir("/proc/self/task") else { return -1 }
        defer { closedir(dir) }
        var count = 0
        while readdir(dir) != nil { count += 1 }
        return count
    }

    @Test func closeEndsCallsInFlight() async throws {
        try await BusPair.with { bus in
            let object = try await bus.server.export(path: "/c", interfaces: [Self.neverReplies()])
            defer { object.remove() }
            let client = try bus.env.connect()
            let calls = (0..<3).map { _ in
                Task { try await client.call(bus.name, "/c", Self.iface, "Never", timeout: .seconds(60)) }
            }
            // Wait until the calls are on their way (the server answers a later call on the same path in order).
            _ = try await client.call(bus.name, "/c", Self.iface, "Quick")
            let start = ContinuousClock.now
            client.close()
            for call in calls {
                await #expect(throws: (any Error).self) { _ = try await call.value }
            }
            #expect(ContinuousClock.now - start < .seconds(5), "the calls waited \(ContinuousClock.now - start)")
            #expect(client.isClosed)
            // After close every new call throws at once too.
            await #expect(throws: BerthError.self) { _ = try await client.call(bus.name, "/c", Self.iface, "Quick") }
        }
    }

    /// The destination leaves the bus without replying: the bus daemon answers NoReply for it, and the call ends.
    @Test func callEndsWhenTheDestinationLeaves() async throws {
        try await BusPair.with { bus in
            let server = try bus.env.connect()
            let name = try await server.uniqueName()
            let object = try await server.export(path: "/c", interfaces: [Self.neverReplies()])
            defer { object.remove() }
            let call = Task { try await bus.client.call(name, "/c", Self.iface, "Never", timeout: .seconds(60)) }
            _ = try await bus.client.call(name, "/c", Self.iface, "Quick")
            let start = ContinuousClock.now
            server.close()
            let error = await #expect(throws: DBusError.self) { _ = try await call.value }
            // NoReply when the bus daemon ends the call for the destination that left; ServiceUnknown when the call
            // reached the bus daemon after the destination's connection was gone. Either way the call ends.
            #expect(
                ["org.freedesktop.DBus.Error.NoReply", "org.freedesktop.DBus.Error.ServiceUnknown"].contains(error?.name),
                "\(String(describing: error))")
            #expect(ContinuousClock.now - start < .seconds(10))  // loose: before the fix it never ended
        }
    }

    /// The bus daemon dies: the pending call ends, the disconnect handler runs, the connection reports closed.
    @Test func connectionLossEndsCallsInFlight() async throws {
        try await BusPair.with { bus in
            let object = try await bus.server.export(path: "/c", interfaces: [Self.neverReplies()])
            defer { object.remove() }
            let lost = Atomic<Bool>(false)
            bus.client.setDisconnectHandler { lost.store(true, ordering: .relaxed) }
            let call = Task { try await bus.client.call(bus.name, "/c", Self.iface, "Never", timeout: .seconds(60)) }
            _ = try await bus.call("/c", Self.iface, "Quick")
            let start = ContinuousClock.now
            bus.env.bus.stop()
            await #expect(throws: (any Error).self) { _ = try await call.value }
            #expect(ContinuousClock.now - start < .seconds(5), "the call waited \(ContinuousClock.now - start)")
            try await waitUntil("the client sees the connection lost", timeout: .seconds(5)) {
                lost.load(ordering: .relaxed) && bus.client.isClosed
            }
            await #expect(throws: (any Error).self) { _ = try await bus.call("/c", Self.iface, "Quick") }
        }
    }

    @Test func closedConnectionsGiveBackDescriptorsAndThreads() async throws {
        try await BusPair.with { bus in
            let object = try await bus.server.export(path: "/c", interfaces: [Self.neverReplies()])
            defer { object.remove() }
            // One connection first, so lazily opened descriptors (logging, /proc) are not counted as growth.
            let warm = try bus.env.connect()
            _ = try await warm.uniqueName()
            warm.close()
            try await waitUntil("the warm-up connection is closed") { warm.isClosed }
            try await Task.sleep(for: .milliseconds(100))
            let fdsBefore = Self.openDescriptors()
            let threadsBefore = Self.threadCount()
            for _ in 0..<50 {
                let connection = try bus.env.connect()
                let tracker = try await connection.trackPeer(bus.name) {}
                let signals = try await connection.signals(path: "/c")
                let exported = try await connection.export(path: "/mine", interfaces: [Self.neverReplies()])
                let pending = Task { try await connection.call(bus.name, "/c", Self.iface, "Never") }
                _ = try await connection.call(bus.name, "/c", Self.iface, "Quick")
                connection.close()
                _ = try? await pending.value
                withExtendedLifetime((tracker, signals, exported)) {}
            }
            var fdsAfter = 0
            try await waitUntil("the descriptors of 50 closed connections are closed", timeout: .seconds(10)) {
                fdsAfter = Self.openDescriptors()
                return fdsAfter <= fdsBefore
            }
            #expect(fdsAfter <= fdsBefore, "\(fdsBefore) descriptors before, \(fdsAfter) after")
            try await waitUntil("the bus threads of 50 closed connections exit", timeout: .seconds(10)) {
                Self.threadCount() <= threadsBefore + 2
            }
        }
    }
}
