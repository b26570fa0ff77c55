import CBerthShim
import Glibc

/// Marshalling between sd-bus messages and `DBusValue`. The only place that reads or appends message contents.
/// Runs on the bus thread (sd-bus is not thread-safe).
///
/// Arrays of fixed-size types (`ay`, `an`, `aq`, `ai`, `au`, `ax`, `at`, `ad`; not `ab`) are read and appended in bulk
/// (`sd_bus_message_read_array`/`append_array`): `ay` becomes one `.bytes` buffer, the others one typed copy that
/// is then converted. One message decodes to at most `maxValues` values (bytes of an `ay` do not count), so a
/// hostile 128 MiB `ai` or `as` is refused with an error instead of costing gigabytes and seconds on the bus thread.
enum MessageCodec {
    /// The most values one message may decode to (each element of an array and dictionary counts; bytes do not).
    static let maxValues = 1 << 20

    /// Why a value at the top level of a message could not be read or appended; `index` counts from 0.
    struct ValueError: Error, CustomStringConvertible {
        var index: Int
        var reason: String
        var description: String { "value \(index + 1): \(reason)" }
    }

    // MARK: Reading

    /// Reads every remaining value of the message body. Descriptors are duplicated (the caller owns them); on a
    /// failure every duplicate made so far is closed and the error names the value (`ValueError`).
    static func readAll(_ m: OpaquePointer) throws(ValueError) -> [DBusValue] {
        var reader = Reader(m: m)
        var values: [DBusValue] = []
        do {
            while try !reader.atEnd() {
                values.append(try reader.readValue())
            }
            return values
        } catch {
            reader.closeDescriptors()
            throw ValueError(index: values.count, reason: "\(error)")
        }
    }

    /// Reads one value (a property's new value). Same ownership rule as `readAll`.
    static func readValue(_ m: OpaquePointer) throws(ValueError) -> DBusValue {
        var reader = Reader(m: m)
        do { return try reader.readValue() } catch {
            reader.closeDescriptors()
            throw ValueError(index: 0, reason: "\(error)")
        }
    }

    struct ReadError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
        init(_ operation: String, errno: Int32) { description = "\(operation): \(systemErrorText(errno))" }
    }

    private struct Reader {
        let m: OpaquePointer
        var count = 0
        /// Descriptors duplicated so far (closed when the read fails half-way).
        var descriptors: [Int32] = []

        func closeDescriptors() { for fd in descriptors { Glibc.close(fd) } }

        mutating func counted(_ n: Int) throws(ReadError) {
            count += n
            if count > MessageCodec.maxValues {
                throw ReadError("more than \(MessageCodec.maxValues) values in one message")
            }
        }

        func atEnd() throws(ReadError) -> Bool {
            let r = sd_bus_message_at_end(m, 0)
            if r < 0 { throw ReadError("sd_bus_message_at_end", errno: -r) }
            return r > 0
        }

        func enter(_ type: UInt8, _ contents: String) throws(ReadError) {
            let r = sd_bus_message_enter_container(m, CChar(bitPattern: type), contents)
            if r < 0 { throw ReadError("cannot enter a container (\(contents))", errno: -r) }
        }

        func exit() throws(ReadError) {
            let r = sd_bus_message_exit_container(m)
            if r < 0 { throw ReadError("cannot leave a container", errno: -r) }
        }

        mutating func readAll() throws(ReadError) -> [DBusValue] {
            var values: [DBusValue] = []
            while try !atEnd() { values.append(try readValue()) }
            return values
        }

        mutating func readValue() throws(ReadError) -> DBusValue {
            var type: CChar = 0
            var contentsPtr: UnsafePointer<CChar>? = nil
            let r = sd_bus_message_peek_type(m, &type, &contentsPtr)
            if r < 0 { throw ReadError("sd_bus_message_peek_type", errno: -r) }
            if r == 0 { throw ReadError("no more values") }
            let contents = contentsPtr.map { String(cString: $0) } ?? ""
            try counted(1)
            switch UInt8(bitPattern: type) {
            case UInt8(ascii: "a"):
                if let bulk = try readTrivialArray(contents) { return bulk }
                try enter(UInt8(ascii: "a"), contents)
                if contents.hasPrefix("{") {
                    let inner = String(contents.dropFirst().dropLast())
                    let (keySig, valueSig) = MessageCodec.splitDictEntry(inner)
                    var entries: [DBusDictEntry] = []
                    while true {
                        let e = sd_bus_message_enter_container(m, CChar(UInt8(ascii: "e")), inner)
                        if e < 0 { throw ReadError("cannot enter a dictionary entry", errno: -e) }
                        if e == 0 { break }
                        let key = try readValue()
                        let value = try readValue()
                        try exit()
                        entries.append(DBusDictEntry(key, value))
                    }
                    try exit()
                    return .dictionary(key: keySig, value: valueSig, entries)
                }
                var items: [DBusValue] = []
                while try !atEnd() { items.append(try readValue()) }
                try exit()
                return .array(element: contents, items)
            case UInt8(ascii: "r"):
                try enter(UInt8(ascii: "r"), contents)
                let items = try readAll()
                try exit()
                return .structure(items)
            case UInt8(ascii: "v"):
                try enter(UInt8(ascii: "v"), contents)
                let inner = try readValue()
                try exit()
                return .variant(inner)
            default:
                return try readBasic(type)
            }
        }

        /// `ay` as `.bytes`; `an aq ai au ax at ad` as one copy (sd-bus has no bulk path for `ab`) converted to values; nil for other arrays.
        mutating func readTrivialArray(_ element: String) throws(ReadError) -> DBusValue? {
            guard element.utf8.count == 1, let type = element.utf8.first else { return nil }
            switch type {
            case UInt8(ascii: "y"): return .bytes(try bulk(type, UInt8.self))
            case UInt8(ascii: "n"): return .array(element: element, try bulk(type, Int16.self).map { .int16($0) })
            case UInt8(ascii: "q"): return .array(element: element, try bulk(type, UInt16.self).map { .uint16($0) })
            case UInt8(ascii: "i"): return .array(element: element, try bulk(type, Int32.self).map { .int32($0) })
            case UInt8(ascii: "u"): return .array(element: element, try bulk(type, UInt32.self).map { .uint32($0) })
            case UInt8(ascii: "x"): return .array(element: element, try bulk(type, Int64.self).map { .int64($0) })
            case UInt8(ascii: "t"): return .array(element: element, try bulk(type, UInt64.self).map { .uint64($0) })
            case UInt8(ascii: "d"): return .array(element: element, try bulk(type, Double.self).map { .double($0) })
            default: return nil
            }
        }

        /// One `sd_bus_message_read_array` and one copy (the message's buffer need not be aligned for `T`).
        mutating func bulk<T>(_ type: UInt8, _: T.Type) throws(ReadError) -> [T] {
            var pointer: UnsafeRawPointer? = nil
            var size = 0
            let r = sd_bus_message_read_array(m, CChar(bitPattern: type), &pointer, &size)
            if r < 0 { throw ReadError("sd_bus_message_read_array", errno: -r) }
            let n = size / MemoryLayout<T>.stride
            if type != UInt8(ascii: "y") { try counted(n) }
            guard n > 0, let pointer else { return [] }
            return [T](unsafeUninitializedCapacity: n) { buffer, initialized in
                UnsafeMutableRawPointer(buffer.baseAddress!).copyMemory(from: pointer, byteCount: n * MemoryLayout<T>.stride)
                initialized = n
            }
        }

        mutating func readBasic(_ type: CChar) throws(ReadError) -> DBusValue {
            func read<T>(_ initial: T) throws(ReadError) -> T {
                var value = initial
                let r = withUnsafeMutablePointer(to: &value) { sd_bus_message_read_basic(m, type, $0) }
                if r == -EBADMSG, [UInt8(ascii: "s"), UInt8(ascii: "o"), UInt8(ascii: "g")].contains(UInt8(bitPattern: type)) {
                    throw ReadError("not a valid D-Bus string (invalid UTF-8, NUL or a character sd-bus refuses)")
                }
                if r < 0 { throw ReadError("sd_bus_message_read_basic", errno: -r) }
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
                // sd-bus closes its own descriptor with the message: hand out a duplicate the receiver owns.
                let fd = try read(Int32(-1))
                let copy = fcntl(fd, F_DUPFD_CLOEXEC, 3)
                if copy < 0 { throw ReadError("cannot duplicate the file descriptor \(fd)", errno: errno) }
                descriptors.append(copy)
                return .unixFD(copy)
            case UInt8(ascii: "s"), UInt8(ascii: "o"), UInt8(ascii: "g"):
                let ptr = try read(UnsafePointer<CChar>?.none)
                let text = ptr.map { String(cString: $0) } ?? ""
                switch UInt8(bitPattern: type) {
                case UInt8(ascii: "o"): return .objectPath(text)
                case UInt8(ascii: "g"): return .signature(text)
                default: return .string(text)
                }
            default:
                throw ReadError("unsupported D-Bus type '\(Character(Unicode.Scalar(UInt8(bitPattern: type))))'")
            }
        }
    }

    /// Splits a dict entry signature "KV" into its key (one basic type) and value (the rest).
    static func splitDictEntry(_ inner: String) -> (String, String) {
        guard let first = inner.first else { return ("", "") }
        return (String(first), String(inner.dropFirst()))
    }

    // MARK: Appending

    /// Appends `values` in order; a failure names the value (`ValueError`, index from 0).
    static func append(_ m: OpaquePointer, _ values: [DBusValue]) throws(ValueError) {
        for (index, value) in values.enumerated() {
            do { try append(m, value) } catch { throw ValueError(index: index, reason: error.description) }
        }
    }

    struct AppendError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    static func append(_ m: OpaquePointer, _ value: DBusValue) throws(AppendError) {
        func check(_ r: Int32, _ what: @autoclosure () -> String) throws(AppendError) {
            if r < 0 { throw AppendError("cannot append \(what()): \(systemErrorText(-r))") }
        }
        func basic<T>(_ type: Character, _ v: T) throws(AppendError) {
            var v = v
            let r = withUnsafePointer(to: &v) { sd_bus_message_append_basic(m, CChar(type.asciiValue!), $0) }
            try check(r, "a value of type '\(type)'")
        }
        func text(_ type: Character, _ s: String) throws(AppendError) {
            if let problem = BusText.problem(s) {
                throw AppendError("sd-bus refuses the string \(BerthError.quote(s)): it holds \(problem)")
            }
            let r = s.withCString { sd_bus_message_append_basic(m, CChar(type.asciiValue!), $0) }
            if r == -EINVAL {
                let kind = type == "o" ? "an object path" : type == "g" ? "a signature" : "a D-Bus string"
                throw AppendError("\(BerthError.quote(s)) is not \(kind)")
            }
            try check(r, "the string \(BerthError.quote(s))")
        }
        func container(_ type: Character, _ contents: String, _ body: () throws(AppendError) -> Void) throws(AppendError) {
            try check(sd_bus_message_open_container(m, CChar(type.asciiValue!), contents), "a container '\(type)' of \(contents)")
            try body()
            try check(sd_bus_message_close_container(m), "the end of a container of \(contents)")
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
        case .unixFD(let v): try basic("h", v)  // sd-bus duplicates it: the sender keeps its own descriptor
        case .string(let v): try text("s", v)
        case .objectPath(let v): try text("o", v)
        case .signature(let v): try text("g", v)
        case .bytes(let v):
            let r = v.withUnsafeBytes { sd_bus_message_append_array(m, CChar(UInt8(ascii: "y")), $0.baseAddress, $0.count) }
            try check(r, "\(v.count) bytes")
        case .array(let element, let items):
            if try appendTrivialArray(m, element, items) { return }
            try container("a", element) { () throws(AppendError) in for item in items { try append(m, item) } }
        case .dictionary(let key, let valueSig, let entries):
            try container("a", "{" + key + valueSig + "}") { () throws(AppendError) in
                for entry in entries {
                    try container("e", key + valueSig) { () throws(AppendError) in
                        try append(m, entry.key)
                        try append(m, entry.value)
                    }
                }
            }
        case .structure(let items):
            try container("r", items.map(\.signature).joined()) { () throws(AppendError) in
                for item in items { try append(m, item) }
            }
        case .variant(let inner):
            try container("v", inner.signature) { () throws(AppendError) in try append(m, inner) }
        }
    }

    /// Appends an array of a fixed-size type with one `sd_bus_message_append_array`; false (nothing appended) when
    /// the element type is not fixed-size or an item does not match it (the container path then reports it).
    private static func appendTrivialArray(_ m: OpaquePointer, _ element: String, _ items: [DBusValue]) throws(AppendError) -> Bool {
        guard element.utf8.count == 1, let type = element.utf8.first else { return false }
        func bulk<T>(_ extract: (DBusValue) -> T?) throws(AppendError) -> Bool {
            var buffer: [T] = []
            buffer.reserveCapacity(items.count)
            for item in items {
                guard let v = extract(item) else { return false }
                buffer.append(v)
            }
            let r = buffer.withUnsafeBytes { sd_bus_message_append_array(m, CChar(bitPattern: type), $0.baseAddress, $0.count) }
            if r < 0 { throw AppendError("cannot append an array of \(items.count) '\(element)': \(systemErrorText(-r))") }
            return true
        }
        switch type {
        case UInt8(ascii: "y"): return try bulk { if case .byte(let v) = $0 { v } else { nil } }
        case UInt8(ascii: "n"): return try bulk { if case .int16(let v) = $0 { v } else { nil } }
        case UInt8(ascii: "q"): return try bulk { if case .uint16(let v) = $0 { v } else { nil } }
        case UInt8(ascii: "i"): return try bulk { if case .int32(let v) = $0 { v } else { nil } }
        case UInt8(ascii: "u"): return try bulk { if case .uint32(let v) = $0 { v } else { nil } }
        case UInt8(ascii: "x"): return try bulk { if case .int64(let v) = $0 { v } else { nil } }
        case UInt8(ascii: "t"): return try bulk { if case .uint64(let v) = $0 { v } else { nil } }
        case UInt8(ascii: "d"): return try bulk { if case .double(let v) = $0 { v } else { nil } }
        default: return false
        }
    }
}

/// What sd-bus refuses in a string (it validates every string it appends): NUL (C strings end there, so it would
/// cut the string silently), and the Unicode noncharacters (U+FDD0...U+FDEF and U+xFFFE/U+xFFFF, e.g. U+10FFFF).
enum BusText {
    static func refuses(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        return v == 0 || (v >= 0xFDD0 && v <= 0xFDEF) || (v & 0xFFFE) == 0xFFFE
    }

    /// Nil when sd-bus takes `s`; else what it refuses and where ("U+10FFFF at character 3").
    static func problem(_ s: String) -> String? {
        // Fast path: plain ASCII without NUL (the common case) needs no scalar walk.
        if s.utf8.allSatisfy({ $0 != 0 && $0 < 0x80 }) { return nil }
        for (offset, scalar) in s.unicodeScalars.enumerated() where refuses(scalar) {
            let hex = String(scalar.value, radix: 16, uppercase: true)
            return "U+\(String(repeating: "0", count: max(0, 4 - hex.count)))\(hex) at character \(offset + 1)"
        }
        return nil
    }

    /// `s` with everything sd-bus refuses replaced by U+FFFD (for error messages, which must always go out).
    static func sanitized(_ s: String) -> String {
        guard problem(s) != nil else { return s }
        var result = String.UnicodeScalarView()
        for scalar in s.unicodeScalars { result.append(refuses(scalar) ? "\u{FFFD}" : scalar) }
        return String(result)
    }
}
