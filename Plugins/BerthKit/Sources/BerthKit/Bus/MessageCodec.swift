import CBerthShim
import Glibc

/// Marshalling between sd-bus messages and `DBusValue`. The only place that reads or appends message contents.
/// Runs on the bus thread (sd-bus is not thread-safe).
enum MessageCodec {
    // MARK: Reading

    /// Reads every remaining value of the current container (the whole body at top level).
    static func readAll(_ m: OpaquePointer) throws -> [DBusValue] {
        var values: [DBusValue] = []
        while try !atEnd(m) {
            values.append(try readValue(m))
        }
        return values
    }

    private static func atEnd(_ m: OpaquePointer) throws -> Bool {
        let r = sd_bus_message_at_end(m, 0)
        if r < 0 { throw SystemError("sd_bus_message_at_end", errno: -r) }
        return r > 0
    }

    static func readValue(_ m: OpaquePointer) throws -> DBusValue {
        var type: CChar = 0
        var contentsPtr: UnsafePointer<CChar>? = nil
        let r = sd_bus_message_peek_type(m, &type, &contentsPtr)
        if r < 0 { throw SystemError("sd_bus_message_peek_type", errno: -r) }
        if r == 0 { throw SystemError("sd_bus_message_peek_type: no more values", errno: EBADMSG) }
        let contents = contentsPtr.map { String(cString: $0) } ?? ""
        switch UInt8(bitPattern: type) {
        case UInt8(ascii: "a"):
            try enter(m, "a", contents)
            defer { sd_bus_message_exit_container(m) }
            if contents.hasPrefix("{") {
                let inner = String(contents.dropFirst().dropLast())
                let (keySig, valueSig) = splitDictEntry(inner)
                var entries: [DBusDictEntry] = []
                while sd_bus_message_enter_container(m, CChar(UInt8(ascii: "e")), inner) > 0 {
                    let key = try readValue(m)
                    let value = try readValue(m)
                    sd_bus_message_exit_container(m)
                    entries.append(DBusDictEntry(key, value))
                }
                return .dictionary(key: keySig, value: valueSig, entries)
            }
            var items: [DBusValue] = []
            while try !atEnd(m) { items.append(try readValue(m)) }
            return .array(element: contents, items)
        case UInt8(ascii: "r"):
            try enter(m, "r", contents)
            defer { sd_bus_message_exit_container(m) }
            return .structure(try readAll(m))
        case UInt8(ascii: "v"):
            try enter(m, "v", contents)
            defer { sd_bus_message_exit_container(m) }
            return .variant(try readValue(m))
        default:
            return try readBasic(m, type)
        }
    }

    private static func enter(_ m: OpaquePointer, _ type: Character, _ contents: String) throws {
        let r = sd_bus_message_enter_container(m, CChar(type.asciiValue!), contents)
        if r < 0 { throw SystemError("sd_bus_message_enter_container", errno: -r) }
    }

    private static func readBasic(_ m: OpaquePointer, _ type: CChar) throws -> DBusValue {
        func read<T>(_ initial: T) throws -> T {
            var value = initial
            let r = withUnsafeMutablePointer(to: &value) { sd_bus_message_read_basic(m, type, $0) }
            if r < 0 { throw SystemError("sd_bus_message_read_basic", errno: -r) }
            return value
        }
        switch UInt8(bitPattern: type) {
        case UInt8(ascii: "y"): return .byte(try read(UInt8(0)))
        case UInt8(ascii: "b"): return .bool(try read(Int32(0)) != 0)
        case UInt8(ascii: "n"): return .int16(try read(Int16(0)))
        case UInt8(ascii: "q"): return .uint16(try read(UInt16(0)))
        case UInt8(ascii: "i"): return .int32(try read(Int32(0)))
        case UInt8(ascii: "u"): return .uint32(try read(UInt32(0)))
        case UInt8(ascii: "x"): return .int64(try read(Int64(0)))
        case UInt8(ascii: "t"): return .uint64(try read(UInt64(0)))
        case UInt8(ascii: "d"): return .double(try read(Double(0)))
        case UInt8(ascii: "h"):
            // The message owns (and closes) its descriptor: the receiver gets a duplicate of its own to close.
            let fd = fcntl(try read(Int32(-1)), F_DUPFD_CLOEXEC, 3)
            guard fd >= 0 else { throw SystemError("cannot duplicate a received file descriptor", errno: errno) }
            return .unixFD(fd)
        case UInt8(ascii: "s"), UInt8(ascii: "o"), UInt8(ascii: "g"):
            let ptr = try read(UnsafePointer<CChar>?.none)
            let text = ptr.map { String(cString: $0) } ?? ""
            switch UInt8(bitPattern: type) {
            case UInt8(ascii: "o"): return .objectPath(text)
            case UInt8(ascii: "g"): return .signature(text)
            default: return .string(text)
            }
        default:
            throw SystemError("unsupported D-Bus type '\(Character(Unicode.Scalar(UInt8(bitPattern: type))))'", errno: EBADMSG)
        }
    }

    /// Splits a dict entry signature "KV" into its key (one basic type) and value (the rest).
    static func splitDictEntry(_ inner: String) -> (String, String) {
        guard let first = inner.first else { return ("", "") }
        return (String(first), String(inner.dropFirst()))
    }

    // MARK: Appending

    static func append(_ m: OpaquePointer, _ values: [DBusValue]) throws {
        for value in values { try append(m, value) }
    }

    static func append(_ m: OpaquePointer, _ value: DBusValue) throws {
        func basic<T>(_ type: Character, _ v: T) throws {
            var v = v
            let r = withUnsafePointer(to: &v) { sd_bus_message_append_basic(m, CChar(type.asciiValue!), $0) }
            if r < 0 { throw SystemError("sd_bus_message_append_basic(\(type))", errno: -r) }
        }
        func text(_ type: Character, _ s: String) throws {
            let r = s.withCString { sd_bus_message_append_basic(m, CChar(type.asciiValue!), $0) }
            if r < 0 { throw SystemError("sd_bus_message_append_basic(\(type)) of \"\(s)\"", errno: -r) }
        }
        func container(_ type: Character, _ contents: String, _ body: () throws -> Void) throws {
            var r = sd_bus_message_open_container(m, CChar(type.asciiValue!), contents)
            if r < 0 { throw SystemError("sd_bus_message_open_container(\(type), \(contents))", errno: -r) }
            try body()
            r = sd_bus_message_close_container(m)
            if r < 0 { throw SystemError("sd_bus_message_close_container", errno: -r) }
        }
        switch value {
        case .byte(let v): try basic("y", v)
        case .bool(let v): try basic("b", Int32(v ? 1 : 0))
        case .int16(let v): try basic("n", v)
        case .uint16(let v): try basic("q", v)
        case .int32(let v): try basic("i", v)
        case .uint32(let v): try basic("u", v)
        case .int64(let v): try basic("x", v)
        case .uint64(let v): try basic("t", v)
        case .double(let v): try basic("d", v)
        case .unixFD(let v): try basic("h", v)
        case .string(let v): try text("s", v)
        case .objectPath(let v): try text("o", v)
        case .signature(let v): try text("g", v)
        case .array(let element, let items):
            try container("a", element) { for item in items { try append(m, item) } }
        case .dictionary(let key, let valueSig, let entries):
            try container("a", "{" + key + valueSig + "}") {
                for entry in entries {
                    try container("e", key + valueSig) {
                        try append(m, entry.key)
                        try append(m, entry.value)
                    }
                }
            }
        case .structure(let items):
            try container("r", items.map(\.signature).joined()) { for item in items { try append(m, item) } }
        case .variant(let inner):
            try container("v", inner.signature) { try append(m, inner) }
        }
    }
}
