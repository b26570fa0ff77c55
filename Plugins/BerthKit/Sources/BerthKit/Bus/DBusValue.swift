/// A D-Bus value of any type, as it is marshalled: basic types, arrays, dictionaries, structs and variants.
/// Arrays and dictionaries carry their element signatures so that empty containers still marshal correctly.
///
/// `ay` is read as `.bytes` (one contiguous buffer, read and appended in bulk); `.array(element: "y", ...)` still
/// marshals as `ay`, and the two compare equal. Only `.variant` is boxed, so basic values (and the elements of an
/// array of them) cost no allocation each.
///
/// File descriptors (`.unixFD`): a value *read* from a message (a call's arguments, a reply, a signal) is a
/// duplicate (`F_DUPFD_CLOEXEC`) that the receiver owns and must close; sd-bus closes the message's own descriptor
/// when the message is freed. A value *sent* is duplicated by sd-bus when appended: the sender keeps its own.
public enum DBusValue: Sendable, CustomStringConvertible {
    case byte(UInt8)
    case bool(Bool)
    case int16(Int16)
    case uint16(UInt16)
    case int32(Int32)
    case uint32(UInt32)
    case int64(Int64)
    case uint64(UInt64)
    case double(Double)
    case string(String)
    case objectPath(String)
    case signature(String)
    case unixFD(Int32)
    /// `ay`: bytes, contiguous (a file's contents, a blob). Equal to the same bytes as `.array(element: "y", ...)`.
    case bytes([UInt8])
    /// An array of values whose element signature is given (e.g. "s", "(ssso)").
    case array(element: String, [DBusValue])
    /// A dictionary `a{KV}` with the key and value signatures given; entries keep their order.
    case dictionary(key: String, value: String, [DBusDictEntry])
    case structure([DBusValue])
    indirect case variant(DBusValue)

    /// The D-Bus type signature of this value.
    public var signature: String {
        switch self {
        case .byte: "y"
        case .bool: "b"
        case .int16: "n"
        case .uint16: "q"
        case .int32: "i"
        case .uint32: "u"
        case .int64: "x"
        case .uint64: "t"
        case .double: "d"
        case .string: "s"
        case .objectPath: "o"
        case .signature: "g"
        case .unixFD: "h"
        case .bytes: "ay"
        case .array(let element, _): "a" + element
        case .dictionary(let key, let value, _): "a{" + key + value + "}"
        case .structure(let items): "(" + items.map(\.signature).joined() + ")"
        case .variant: "v"
        }
    }

    public var description: String {
        switch self {
        case .byte(let v): "\(v)"
        case .bool(let v): "\(v)"
        case .int16(let v): "\(v)"
        case .uint16(let v): "\(v)"
        case .int32(let v): "\(v)"
        case .uint32(let v): "\(v)"
        case .int64(let v): "\(v)"
        case .uint64(let v): "\(v)"
        case .double(let v): "\(v)"
        case .string(let v), .objectPath(let v), .signature(let v): "\"\(v)\""
        case .unixFD(let v): "fd:\(v)"
        case .bytes(let v):
            v.count <= 64
                ? "[" + v.map { "\($0)" }.joined(separator: ", ") + "]"
                : "[" + v.prefix(16).map { "\($0)" }.joined(separator: ", ") + ", …(\(v.count) bytes)]"
        case .array(_, let items): "[" + items.map(\.description).joined(separator: ", ") + "]"
        case .dictionary(_, _, let entries):
            "{" + entries.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + "}"
        case .structure(let items): "(" + items.map(\.description).joined(separator: ", ") + ")"
        case .variant(let inner): "<\(inner)>"
        }
    }
}

public struct DBusDictEntry: Sendable, Equatable {
    public var key: DBusValue
    public var value: DBusValue
    public init(_ key: DBusValue, _ value: DBusValue) {
        self.key = key
        self.value = value
    }
}

// MARK: - Building values

extension DBusValue {
    /// `as`: an array of strings.
    public static func strings(_ values: [String]) -> DBusValue { .array(element: "s", values.map { .string($0) }) }
    /// `ao`: an array of object paths.
    public static func objectPaths(_ values: [String]) -> DBusValue {
        .array(element: "o", values.map { .objectPath($0) })
    }
    /// `a{sv}` from ordered pairs.
    public static func vardict(_ pairs: [(String, DBusValue)]) -> DBusValue {
        .dictionary(key: "s", value: "v", pairs.map { DBusDictEntry(.string($0.0), .variant($0.1)) })
    }
    /// An array of structs with the given struct signature (e.g. "(ssso)").
    public static func structs(_ signature: String, _ rows: [[DBusValue]]) -> DBusValue {
        .array(element: signature, rows.map { .structure($0) })
    }
}

// MARK: - Reading values

extension DBusValue {
    public var string: String? {
        switch self {
        case .string(let v), .objectPath(let v), .signature(let v): v
        case .variant(let inner): inner.string
        default: nil
        }
    }
    public var bool: Bool? {
        if case .bool(let v) = self { return v }
        if case .variant(let inner) = self { return inner.bool }
        return nil
    }
    /// Any integer type that fits Int64.
    public var int64: Int64? {
        switch self {
        case .byte(let v): Int64(v)
        case .int16(let v): Int64(v)
        case .uint16(let v): Int64(v)
        case .int32(let v): Int64(v)
        case .uint32(let v): Int64(v)
        case .int64(let v): v
        case .uint64(let v): v <= UInt64(Int64.max) ? Int64(v) : nil
        case .variant(let inner): inner.int64
        default: nil
        }
    }
    public var uint64: UInt64? {
        if case .uint64(let v) = self { return v }
        if let v = int64, v >= 0 { return UInt64(v) }
        return nil
    }
    public var uint32: UInt32? {
        if case .uint32(let v) = self { return v }
        if let v = int64, v >= 0, v <= Int64(UInt32.max) { return UInt32(v) }
        return nil
    }
    public var double: Double? {
        if case .double(let v) = self { return v }
        if case .variant(let inner) = self { return inner.double }
        return int64.map(Double.init)
    }
    /// Elements of an array (or the items of a struct). For `ay` prefer `bytes`, which does not box each byte.
    public var items: [DBusValue]? {
        switch self {
        case .array(_, let items), .structure(let items): items
        case .bytes(let bytes): bytes.map { .byte($0) }
        case .variant(let inner): inner.items
        default: nil
        }
    }
    /// The contents of an `ay` (`.bytes`, or `.array(element: "y", ...)`).
    public var bytes: [UInt8]? {
        switch self {
        case .bytes(let bytes): return bytes
        case .array("y", let items):
            var bytes: [UInt8] = []
            bytes.reserveCapacity(items.count)
            for item in items {
                guard case .byte(let b) = item else { return nil }
                bytes.append(b)
            }
            return bytes
        case .variant(let inner): return inner.bytes
        default: return nil
        }
    }
    /// The entries of an `a{s?}` dictionary, keyed by string; variants are left wrapped.
    public var stringKeyed: [String: DBusValue]? {
        switch self {
        case .dictionary(_, _, let entries):
            var result: [String: DBusValue] = [:]
            for entry in entries { if let key = entry.key.string { result[key] = entry.value } }
            return result
        case .variant(let inner): return inner.stringKeyed
        default: return nil
        }
    }
    /// The value inside a variant (or the value itself).
    public var unwrapped: DBusValue {
        if case .variant(let inner) = self { return inner.unwrapped }
        return self
    }
}

// MARK: - Equality

extension DBusValue: Equatable {
    /// Structural equality; `.bytes(b)` equals `.array(element: "y", b.map(DBusValue.byte))`.
    public static func == (lhs: DBusValue, rhs: DBusValue) -> Bool {
        switch (lhs, rhs) {
        case (.byte(let a), .byte(let b)): a == b
        case (.bool(let a), .bool(let b)): a == b
        case (.int16(let a), .int16(let b)): a == b
        case (.uint16(let a), .uint16(let b)): a == b
        case (.int32(let a), .int32(let b)): a == b
        case (.uint32(let a), .uint32(let b)): a == b
        case (.int64(let a), .int64(let b)): a == b
        case (.uint64(let a), .uint64(let b)): a == b
        case (.double(let a), .double(let b)): a == b
        case (.string(let a), .string(let b)): a == b
        case (.objectPath(let a), .objectPath(let b)): a == b
        case (.signature(let a), .signature(let b)): a == b
        case (.unixFD(let a), .unixFD(let b)): a == b
        case (.bytes(let a), .bytes(let b)): a == b
        case (.bytes(let a), .array("y", _)): rhs.bytes == a
        case (.array("y", _), .bytes(let b)): lhs.bytes == b
        case (.array(let ea, let a), .array(let eb, let b)): ea == eb && a == b
        case (.dictionary(let ka, let va, let a), .dictionary(let kb, let vb, let b)): ka == kb && va == vb && a == b
        case (.structure(let a), .structure(let b)): a == b
        case (.variant(let a), .variant(let b)): a == b
        default: false
        }
    }
}
