import BerthKit
import BerthTestSupport
import Glibc
import Synchronization
import Testing

/// Objects own their sd-bus slots: dropping a `BusObject` (or a `PeerTracker`) without `remove()`/`cancel()`
/// takes it off the bus on the bus thread before its memory goes, so introspection and calls afterwards answer
/// instead of reading freed vtables.
@Suite struct BusLifetimeTests {
    static let iface = "org.berth.Test.Life"

    static func interface() -> BusInterface {
        BusInterface(iface, methods: [
            .sync("Hello", in: [BusArg("who", "s")], out: [BusArg("greeting", "s")]) { call in
                [.string("hello " + call.string(0))]
            },
        ], properties: [BusProperty("Name", "s", initial: .string("kept"))], signals: [BusSignal("Poked", [BusArg("n", "u")])])
    }

    @Test func droppedObjectLeavesTheBusAndIntrospectionAnswers() async throws {
        try await BusPair.with { bus in
            try await bus.server.addObjectManager(path: "/life")
            let kept = try await bus.server.export(path: "/life/kept", interfaces: [Self.interface()])
            defer { kept.remove() }
            for round in 0..<20 {
                // Exported, used, then dropped without remove().
                var object: BusObject? = try await bus.server.export(path: "/life/dropped\(round)", interfaces: [Self.interface()])
                #expect(try await bus.call("/life/dropped\(round)", Self.iface, "Hello", [.string("a")]) == [.string("hello a")])
                object?.set("Name", .string("x\(round)"))
                object = nil
                _ = object
                // Churn the heap so a freed vtable is overwritten.
                for _ in 0..<200 { _ = [UInt8](repeating: 0x5A, count: 64 + round).withUnsafeBufferPointer { $0.count } }
            }
            let introspect = try await bus.env.busctl(["introspect", bus.name, "/life"])
            #expect(introspect.status == 0, "\(introspect)")
            let tree = try await bus.env.busctl(["tree", bus.name])
            #expect(tree.status == 0 && tree.stdout.contains("/life/kept") && !tree.stdout.contains("dropped"), "\(tree)")
            let gone = try await bus.env.busctl(["introspect", bus.name, "/life/dropped3"])
            #expect(!gone.stdout.contains(Self.iface), "\(gone)")
            let call = try await bus.env.busctl(["call", bus.name, "/life/dropped3", Self.iface, "Hello", "s", "b"])
            #expect(call.status != 0, "\(call)")
            let managed = try await bus.call("/life", "org.freedesktop.DBus.ObjectManager", "GetManagedObjects")
            #expect(managed.first?.description.contains("dropped") == false, "\(managed)")
            // The bus thread is alive and answers.
            #expect(try await bus.call("/life/kept", Self.iface, "Hello", [.string("b")]) == [.string("hello b")])
        }
    }

    @Test func droppedPeerTrackerNeverCallsBack() async throws {
        try await BusPair.with { bus in
            let called = Atomic<Int>(0)
            var peers: [BusConnection] = []
            for _ in 0..<10 {
                let peer = try bus.env.connect()
                peers.append(peer)
                // Dropped at once, without cancel().
                _ = try await bus.server.trackPeer(try await peer.uniqueName()) { _ = called.add(1, ordering: .relaxed) }
            }
            // A tracker kept alive still fires.
            let watched = try bus.env.connect()
            let fired = Atomic<Bool>(false)
            let tracker = try await bus.server.trackPeer(try await watched.uniqueName()) { fired.store(true, ordering: .relaxed) }
            for peer in peers { peer.close() }
            watched.close()
            try await waitUntil("the kept tracker fires", timeout: .seconds(10)) { fired.load(ordering: .relaxed) }
            withExtendedLifetime(tracker) {}
            try await Task.sleep(for: .milliseconds(200))
            #expect(called.load(ordering: .relaxed) == 0, "a dropped tracker called back")
            let object = try await bus.server.export(path: "/life/after", interfaces: [Self.interface()])
            defer { object.remove() }
            #expect(try await bus.call("/life/after", Self.iface, "Hello", [.string("c")]) == [.string("hello c")])
        }
    }

    /// A plugin bug (a property or signal it did not declare, a value of the wrong type) is logged and ignored:
    /// nothing traps.
    @Test func pluginBugsInSetAndEmitDoNotTrap() async throws {
        try await BusPair.with { bus in
            let object = try await bus.server.export(path: "/life/bugs", interfaces: [Self.interface()])
            defer { object.remove() }
            object.set("Missing", .string("x"))
            object.set("Name", .uint32(3))
            object.set([("Name", .string("ok")), ("Missing", .bool(true))])
            object.set("Name", .string("y"), interface: "org.berth.Test.Other")
            object.emit("Unknown", [])
            object.emit("Poked", [.uint32(1)], interface: "org.berth.Test.Other")
            #expect(object.get("Name") == .string("ok"))
            let value = try await bus.client.getProperty(bus.name, "/life/bugs", Self.iface, "Name")
            #expect(value == .string("ok"))
            // An argument index past the call's arguments reads as empty rather than trapping.
            let call = BusCall(arguments: [], sender: "", path: "/", member: "M")
            #expect(call.string(3) == "" && call.bytes(9) == [] && call.uint32(1) == 0 && call.fileDescriptor(0) == nil)
        }
    }
}
