import BerthKit
import BerthTestSupport
import Glibc
import Testing

/// Every call gets an answer: handler errors map to `org.berth.Berth1.Error.*`, error messages are capped and
/// made acceptable to sd-bus, and a value sd-bus refuses (NUL, U+10FFFF) is named in the error.
@Suite struct BusErrorReplyTests {
    static let iface = "org.berth.Test.Errors"
    struct PlainError: Error, CustomStringConvertible { var description: String { "plain trouble" } }

    static func interface() -> BusInterface {
        BusInterface(iface, methods: [
            .sync("Plain") { _ in throw PlainError() },
            .async("PlainAsync") { _ in throw PlainError() },
            .sync("Echo", in: [BusArg("text", "s")], out: [BusArg("echoed", "s")]) { call in
                throw BerthError.invalidArgument("no such thing as \"\(call.string(0))\" here")
            },
            .sync("Quote", in: [BusArg("text", "s")]) { call in
                throw BerthError.notFound("no service \(BerthError.quote(call.string(0)))")
            },
            .sync("Give", in: [BusArg("what", "s")], out: [BusArg("count", "u"), BusArg("label", "s")]) { call in
                switch call.string(0) {
                case "nul": [.uint32(1), .string("before\u{0}after")]
                case "nonchar": [.uint32(1), .string("bad \u{10FFFF} char")]
                case "nonchar-error": throw BerthError.failed("a message with \u{10FFFF} and \u{0} in it")
                default: [.uint32(1), .string("fine")]
                }
            },
            .async("GiveAsync", out: [BusArg("label", "s")]) { _ in [.string("async \u{FFFE}")] },
        ], properties: [
            BusProperty("Label", "s", initial: .string("ok"), setter: { value, _ in
                if value.string == "no" { throw BerthError.invalidArgument("Label cannot be \"no\"") }
            })
        ])
    }

    @Test func anyHandlerErrorAnswersFailed() async throws {
        try await BusPair.with { bus in
            let object = try await bus.server.export(path: "/e", interfaces: [Self.interface()])
            defer { object.remove() }
            for member in ["Plain", "PlainAsync"] {
                let error = try await #require(throws: DBusError.self) { try await bus.call("/e", Self.iface, member) }
                #expect(error.name == "org.berth.Berth1.Error.Failed" && error.message.contains("plain trouble"), "\(error)")
            }
        }
    }

    @Test func overlongErrorMessagesAreCut() async throws {
        try await BusPair.with { bus in
            let object = try await bus.server.export(path: "/e", interfaces: [Self.interface()])
            defer { object.remove() }
            let huge = String(repeating: "x", count: 1 << 20)
            let error = try await #require(throws: DBusError.self) {
                try await bus.call("/e", Self.iface, "Echo", [.string(huge)])
            }
            #expect(error.name == BerthError.Code.invalidArgument.dbusName)
            #expect(error.message.utf8.count <= BerthError.maxBusMessageBytes, "\(error.message.utf8.count) bytes came back")
            #expect(error.message.hasPrefix("no such thing as \"xxx"), "the start of the sentence is kept")
            #expect(error.message.hasSuffix("…(1048600 bytes)"), "\(error.message.suffix(40))")
            // The helper plugins use quotes ~200 characters and says how big the value was.
            let quoted = try await #require(throws: DBusError.self) {
                try await bus.call("/e", Self.iface, "Quote", [.string(huge)])
            }
            #expect(quoted.message == "no service \"" + String(repeating: "x", count: 200) + "…\" (1048576 bytes)")
        }
    }

    @Test func quoteEscapesAndCuts() {
        #expect(BerthError.quote("abc") == "\"abc\"")
        #expect(BerthError.quote("a\"b\\c\nd\u{1}") == "\"a\\\"b\\\\c\\nd\\u{1}\"")
        #expect(BerthError.quote("x\u{10FFFF}\u{0}") == "\"x\\u{10ffff}\\u{0}\"")
        #expect(BerthError.quote("ééé", limit: 2) == "\"éé…\" (6 bytes)")
        let cut = BerthError(.failed, "héllo " + String(repeating: "é", count: 2000)).busMessage
        #expect(cut.utf8.count <= BerthError.maxBusMessageBytes && cut.hasPrefix("héllo é") && cut.hasSuffix("…(4007 bytes)"))
        #expect(BerthError(.failed, "a\u{0}b\u{10FFFF}").busMessage == "a\u{FFFD}b\u{FFFD}")
    }

    /// A reply holding a string sd-bus refuses becomes an error reply naming the output argument, never a
    /// silent hang or a silently cut string; an error message holding one still goes out.
    @Test func refusedReplyStringsNameTheArgument() async throws {
        try await BusPair.with { bus in
            let object = try await bus.server.export(path: "/e", interfaces: [Self.interface()])
            defer { object.remove() }
            #expect(try await bus.call("/e", Self.iface, "Give", [.string("ok")]) == [.uint32(1), .string("fine")])
            for what in ["nul", "nonchar"] {
                let error = try await #require(throws: DBusError.self) {
                    try await bus.call("/e", Self.iface, "Give", [.string(what)], timeout: .seconds(5))
                }
                #expect(error.name == BerthError.Code.failed.dbusName, "\(error)")
                #expect(error.message.contains("output 2 'label' (s)") && error.message.contains("Give on /e"), "\(error)")
                #expect(error.message.contains(what == "nul" ? "U+0000" : "U+10FFFF"), "\(error)")
            }
            let async = try await #require(throws: DBusError.self) {
                try await bus.call("/e", Self.iface, "GiveAsync", timeout: .seconds(5))
            }
            #expect(async.message.contains("output 1 'label' (s)") && async.message.contains("U+FFFE"), "\(async)")
            let error = try await #require(throws: DBusError.self) {
                try await bus.call("/e", Self.iface, "Give", [.string("nonchar-error")], timeout: .seconds(5))
            }
            #expect(error.name == BerthError.Code.failed.dbusName && error.message == "a message with \u{FFFD} and \u{FFFD} in it")
            // A client's argument that sd-bus refuses while sending: named, before anything is sent.
            let refused = try await #require(throws: BerthError.self) {
                try await bus.call("/e", Self.iface, "Echo", [.string("x\u{0}y")], timeout: .seconds(5))
            }
            #expect(refused.code == .invalidArgument && refused.message.contains("value 1") && refused.message.contains("U+0000"))
        }
    }

    /// A string sd-bus refuses, sent by another client (gdbus accepts U+10FFFF), is answered with an error that
    /// names the argument or the property.
    @Test func refusedIncomingStringsNameTheArgument() async throws {
        try await BusPair.with { bus in
            let object = try await bus.server.export(path: "/e", interfaces: [Self.interface()])
            defer { object.remove() }
            let r = try await bus.env.gdbus(["call", "@BUS", "--dest", bus.name, "--object-path", "/e", "--method",
                Self.iface + ".Echo", "--timeout", "5", "'a\\U0010ffffb'"])
            #expect(r.status != 0, "\(r)")
            #expect(r.stderr.contains("InvalidArgument") && r.stderr.contains("argument 1 'text' (s)"), "\(r)")
            let p = try await bus.env.gdbus(["call", "@BUS", "--dest", bus.name, "--object-path", "/e", "--method",
                "org.freedesktop.DBus.Properties.Set", "--timeout", "5", Self.iface, "Label", "<'a\\U0010ffffb'>"])
            #expect(p.status != 0 && p.stderr.contains("Label"), "\(p)")
            #expect(try await bus.client.getProperty(bus.name, "/e", Self.iface, "Label") == .string("ok"))
        }
    }
}
