import BerthKit
import BerthTestSupport
import Glibc
import Testing

/// A server connection exporting objects and a client connection calling them, on a private dbus-daemon.
struct BusPair {
    let env: TestEnvironment
    let server: BusConnection
    let client: BusConnection
    let name: String

    static func with<T>(_ body: (BusPair) async throws -> T) async throws -> T {
        try await TestEnvironment.with { env in
            let server = try env.connect()
            let client = try env.connect()
            defer {
                client.close()
                server.close()
            }
            return try await body(BusPair(env: env, server: server, client: client, name: try await server.uniqueName()))
        }
    }

    func call(_ path: String, _ interface: String, _ member: String, _ arguments: [DBusValue] = [],
        timeout: Duration = .seconds(10)
    ) async throws -> [DBusValue] {
        try await client.call(name, path, interface, member, arguments, timeout: timeout)
    }
}

/// `ay` travels as one contiguous `.bytes` buffer (read with sd_bus_message_read_array, appended with
/// sd_bus_message_append_array); arrays of the other fixed-size types are read in bulk too, and one message
/// decodes to a bounded number of values.
@Suite struct BusBulkArrayTests {
    static let iface = "org.berth.Test.Bulk"

    static func echo() -> BusInterface {
        BusInterface(iface, methods: [
            .sync("Echo", in: [BusArg("data", "ay")], out: [BusArg("data", "ay")]) { call in [call.arguments[0]] },
            .sync("Kind", in: [BusArg("data", "ay")], out: [BusArg("kind", "s"), BusArg("size", "u")]) { call in
                let kind = if case .bytes = call.arguments[0] { "bytes" } else { "other" }
                return [.string(kind), .uint32(UInt32(call.bytes(0).count))]
            },
            .sync("Ints", in: [BusArg("values", "ai")], out: [BusArg("count", "u"), BusArg("values", "ai")]) { call in
                [.uint32(UInt32(call.arguments[0].items?.count ?? 0)), call.arguments[0]]
            },
            .sync("Nested", in: [BusArg("v", "v"), BusArg("d", "a{sv}")], out: [BusArg("v", "v"), BusArg("d", "a{sv}")]) { call in
                call.arguments
            },
            .sync("Mixed", in: [BusArg("a", "ab"), BusArg("b", "ad"), BusArg("c", "at"), BusArg("d", "an")],
                out: [BusArg("a", "ab"), BusArg("b", "ad"), BusArg("c", "at"), BusArg("d", "an")]) { call in
                call.arguments
            },
        ])
    }

    @Test func bytesRoundTripContiguously() async throws {
        try await BusPair.with { bus in
            let object = try await bus.server.export(path: "/bulk", interfaces: [Self.echo()])
            defer { object.remove() }
            let data = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            let reply = try await bus.call("/bulk", Self.iface, "Echo", [.bytes(data)])
            guard case .bytes(let back)? = reply.first else {
                Issue.record("an ay reply reads as .bytes, got \(reply.first.map { "\($0.signature)" } ?? "nothing")")
                return
            }
            #expect(back == data)
            // The handler sees .bytes too, and an .array(element: "y") still marshals as ay and compares equal.
            let kind = try await bus.call("/bulk", Self.iface, "Kind", [.array(element: "y", [.byte(7), .byte(8)])])
            #expect(kind == [.string("bytes"), .uint32(2)])
            #expect(DBusValue.bytes([7, 8]) == .array(element: "y", [.byte(7), .byte(8)]))
            #expect(DBusValue.array(element: "y", [.byte(7)]) == .bytes([7]))
            #expect(DBusValue.bytes([7, 8]) != .bytes([7]))
            #expect(DBusValue.bytes([1, 2]).items == [.byte(1), .byte(2)])
            #expect(DBusValue.bytes([1, 2]).signature == "ay")
            #expect(DBusValue.variant(.bytes([3])).bytes == [3])
            // An independent client (busctl) sends ay the same way.
            let r = try await bus.env.busctl(["call", bus.name, "/bulk", Self.iface, "Kind", "ay", "3", "1", "2", "3"])
            #expect(r.status == 0 && r.stdout == "su \"bytes\" 3\n", "\(r)")
            let empty = try await bus.call("/bulk", Self.iface, "Echo", [.bytes([])])
            #expect(empty == [.bytes([])])
            // Inside variants and dictionaries too.
            let nested = try await bus.call("/bulk", Self.iface, "Nested", [.variant(.bytes([9, 8])), .vardict([("b", .bytes([1]))])])
            guard case .variant(.bytes(let inVariant))? = nested.first else {
                Issue.record("an ay in a variant reads as .bytes, got \(nested)")
                return
            }
            #expect(inVariant == [9, 8])
            #expect(nested.last?.stringKeyed?["b"] == .variant(.bytes([1])))
        }
    }

    @Test func fixedSizeArraysKeepTheirValues() async throws {
        try await BusPair.with { bus in
            let object = try await bus.server.export(path: "/bulk", interfaces: [Self.echo()])
            defer { object.remove() }
            let ints = DBusValue.array(element: "i", [.int32(-1), .int32(0), .int32(Int32.max), .int32(Int32.min)])
            #expect(try await bus.call("/bulk", Self.iface, "Ints", [ints]) == [.uint32(4), ints])
            let mixed: [DBusValue] = [
                .array(element: "b", [.bool(true), .bool(false)]), .array(element: "d", [.double(0.5), .double(-2)]),
                .array(element: "t", [.uint64(UInt64.max), .uint64(1)]), .array(element: "n", [.int16(-7)]),
            ]
            #expect(try await bus.call("/bulk", Self.iface, "Mixed", mixed) == mixed)
            let r = try await bus.env.busctl(["call", "--", bus.name, "/bulk", Self.iface, "Ints", "ai", "3", "5", "-6", "7"])
            #expect(r.stdout == "uai 3 3 5 -6 7\n", "\(r)")
        }
    }

    /// A hostile array of more values than one message may hold is refused, naming the argument, and the bus
    /// thread goes on answering.
    @Test func tooManyValuesAreRefusedNamingTheArgument() async throws {
        try await BusPair.with { bus in
            let object = try await bus.server.export(path: "/bulk", interfaces: [Self.echo()])
            defer { object.remove() }
            let many = DBusValue.array(element: "i", Array(repeating: .int32(1), count: (1 << 20) + 1))
            do {
                _ = try await bus.call("/bulk", Self.iface, "Ints", [many], timeout: .seconds(20))
                Issue.record("an ai of 2^20 + 1 values was accepted")
            } catch let error as DBusError {
                #expect(error.name == BerthError.Code.invalidArgument.dbusName, "\(error)")
                #expect(error.message.contains("argument 1 'values' (ai)") && error.message.contains("1048576"), "\(error)")
            }
            #expect(try await bus.call("/bulk", Self.iface, "Kind", [.bytes([1])]) == [.string("bytes"), .uint32(1)])
        }
    }

    /// Not a timed test: prints how long a (just under) 32 MiB `ay` and a 2^20-element `ai` take to travel, when
    /// BERTH_BUS_MEASURE=1. dbus-daemon's default message limit is 32 MiB, header included.
    @Test(.enabled(if: BusBulkArrayTests.measuring)) func measureBulkArrays() async throws {
        try await BusPair.with { bus in
            let size = (32 << 20) - (64 << 10)
            let iface = BusInterface(Self.iface, methods: [
                .sync("Echo", in: [BusArg("data", "ay")], out: [BusArg("data", "ay")]) { call in [.bytes(call.bytes(0))] },
                .sync("Count", in: [BusArg("data", "ay")], out: [BusArg("size", "u")]) { call in
                    [.uint32(UInt32(call.bytes(0).count))]
                },
                .sync("Ints", in: [BusArg("values", "ai")], out: [BusArg("count", "u")]) { call in
                    [.uint32(UInt32(call.arguments[0].items?.count ?? 0))]
                },
                .sync("Ping") { _ in [] },
            ])
            let object = try await bus.server.export(path: "/m", interfaces: [iface])
            defer { object.remove() }
            let data = [UInt8](repeating: 0xAB, count: size)
            for _ in 0..<2 {
                var start = ContinuousClock.now
                _ = try await bus.call("/m", Self.iface, "Ping")
                print("ping: \(ContinuousClock.now - start)")
                start = ContinuousClock.now
                let count = try await bus.call("/m", Self.iface, "Count", [.bytes(data)], timeout: .seconds(60))
                print("\(size) bytes as ay, one way (client append, 2 socket hops, server read, tiny reply): \(ContinuousClock.now - start)")
                #expect(count == [.uint32(UInt32(size))])
                start = ContinuousClock.now
                let reply = try await bus.call("/m", Self.iface, "Echo", [.bytes(data)], timeout: .seconds(60))
                print("\(size) bytes as ay, round trip (append, read, append, read, 4 socket hops): \(ContinuousClock.now - start)")
                #expect(reply.first?.bytes?.count == size)
                let ints = DBusValue.array(element: "i", Array(repeating: .int32(7), count: MessageCodecLimit.values - 8))
                start = ContinuousClock.now
                let n = try await bus.call("/m", Self.iface, "Ints", [ints], timeout: .seconds(60))
                print("\(MessageCodecLimit.values) int32 as ai, one way: \(ContinuousClock.now - start)")
                #expect(n == [.uint32(UInt32(MessageCodecLimit.values - 8))])
            }
        }
    }

    enum MessageCodecLimit { static let values = 1 << 20 }

    static let measuring = getenv("BERTH_BUS_MEASURE").map { String(cString: $0) == "1" } ?? false
}
