import BerthKit
import Foundation

/// One call the fuzzer makes: the arguments, a short label for reports (never the 1 MiB value itself) and
/// whether the signature is deliberately wrong.
struct FuzzCall: Sendable {
    enum Kind: Sendable { case edge, wrongSignature }
    var kind: Kind
    var label: String
    var arguments: [DBusValue]
}

/// Paths and file descriptors the fuzzer hands berthd where it takes a path or an fd.
struct FuzzFixtures: Sendable {
    /// A unique name that must appear nowhere after the run: the traversal strings aim at it.
    var escapeName: String
    /// A folder outside berthd's folders (inside the test's temp folder) that must stay empty.
    var outsideDir: String
    var fifo: String
    var sparseTiB: String
    var directory: String
    var regularYAML: String
    /// Open fds for `h`: a pipe whose writer stays open (a read never ends), /dev/zero, a folder.
    var fds: [(String, Int32)]
}

/// Edge values for each D-Bus type, deterministic for a seed.
struct EdgeValues {
    let settings: FuzzSettings
    let fixtures: FuzzFixtures
    private let hugeString: String
    private let hugeBytes: [UInt8]
    private let randomKeys: [String]

    init(settings: FuzzSettings, fixtures: FuzzFixtures) {
        self.settings = settings
        self.fixtures = fixtures
        var rng = SeededGenerator(seed: settings.seed)
        // Printable ASCII, so that the value is a valid string of exactly stringBytes bytes.
        hugeString = String(decoding: rng.bytes(settings.stringBytes).map { 0x21 + $0 % 94 }, as: UTF8.self)
        hugeBytes = rng.bytes(settings.stringBytes)
        randomKeys = (0..<settings.dictCount).map { _ in rng.word(12) }
    }

    /// A value of `type` that passes the type check and says nothing special.
    static func base(_ type: String) -> DBusValue {
        switch type.first {
        case "y": return .byte(1)
        case "b": return .bool(false)
        case "n": return .int16(1)
        case "q": return .uint16(1)
        case "i": return .int32(1)
        case "u": return .uint32(1)
        case "x": return .int64(1)
        case "t": return .uint64(1)
        case "d": return .double(1)
        case "s": return .string("fuzz")
        case "o": return .objectPath("/org/berth/Berth1")
        case "g": return .signature("s")
        case "h": return .unixFD(0)  // stdin of the test: /dev/null or a terminal; never read to the end
        case "v": return .variant(.string("fuzz"))
        case "(":
            let inner = String(type.dropFirst().dropLast())
            return .structure(Signature.split(inner).map(base))
        case "a":
            let element = String(type.dropFirst())
            if element.hasPrefix("{") {
                let inner = Signature.split(String(element.dropFirst().dropLast()))
                return .dictionary(key: inner[0], value: inner.count > 1 ? inner[1] : "s", [])
            }
            return .array(element: element, [])
        default: return .string("fuzz")
        }
    }

    /// The strings every `s` argument gets.
    var strings: [(String, String)] {
        let escape = fixtures.escapeName
        var list: [(String, String)] = [
            ("empty", ""),
            ("\(settings.stringBytes)-byte string", hugeString),
            ("control characters", "\u{1}\u{7}\u{8}\t\n\r\u{1b}[31m\u{7f}x\u{85}"),
            ("multi-byte and BOM", "\u{FEFF}é✓😀\u{200B}\u{202E}"),
            ("traversal to /tmp", String(repeating: "../", count: 24) + "tmp/" + escape),
            ("relative traversal", "../" + escape),
            ("relative name", escape),
            ("absolute path outside", fixtures.outsideDir + "/" + escape),
            ("format specifiers", "%s%n%x%p%99999999d"),
            ("YAML/JSON punctuation", "{[*&!|>'\"%@`: -"),
            ("65 characters", String(repeating: "a", count: 65)),
            ("leading dot", ".hidden"),
            ("leading dash", "--help"),
            ("slash", "/"),
        ]
        if settings.hostileFiles {
            list += [
                ("a FIFO", fixtures.fifo),
                ("/proc/self/pagemap", "/proc/self/pagemap"),
                ("a 1 TiB sparse file", fixtures.sparseTiB),
                ("/dev/zero", "/dev/zero"),
                ("a folder", fixtures.directory),
            ]
        }
        return list
    }

    /// Edge values of `type` (one argument's worth), labelled.
    func edges(_ type: String) -> [(String, DBusValue)] {
        switch type.first {
        case "y": return [("0", .byte(0)), ("255", .byte(255))]
        case "b": return [("true", .bool(true)), ("false", .bool(false))]
        case "n": return [("min", .int16(.min)), ("-1", .int16(-1)), ("0", .int16(0)), ("max", .int16(.max))]
        case "q": return [("0", .uint16(0)), ("max", .uint16(.max))]
        case "i": return [("min", .int32(.min)), ("-1", .int32(-1)), ("0", .int32(0)), ("max", .int32(.max))]
        case "u":
            return [
                ("0", .uint32(0)), ("100000", .uint32(100_000)), ("max-1", .uint32(.max - 1)), ("max", .uint32(.max)),
            ]
        case "x": return [("min", .int64(.min)), ("-1", .int64(-1)), ("0", .int64(0)), ("max", .int64(.max))]
        case "t": return [("0", .uint64(0)), ("2^63", .uint64(1 << 63)), ("max", .uint64(.max))]
        case "d":
            return [
                ("NaN", .double(.nan)), ("inf", .double(.infinity)), ("-inf", .double(-.infinity)),
                ("-0", .double(-0.0)),
                ("0", .double(0)), ("-1", .double(-1)), ("1e308", .double(1e308)), ("-1e308", .double(-1e308)),
                ("least nonzero", .double(.leastNonzeroMagnitude)),
            ]
        case "s": return strings.map { ($0.0, .string($0.1)) }
        case "o":
            return [
                ("/", .objectPath("/")), ("missing object", .objectPath("/org/berth/Berth1/nope")),
                ("deep path", .objectPath(String(repeating: "/a", count: 2000))),
            ]
        case "g":
            return [
                ("empty signature", .signature("")), ("a{sv}", .signature("a{sv}")),
                ("deepest signature", .signature(String(repeating: "a", count: 32) + "i")),
            ]
        case "h": return fixtures.fds.map { ($0.0, .unixFD($0.1)) }
        case "v": return variants
        case "a":
            let element = String(type.dropFirst())
            if element == "{sv}" { return vardicts }
            if element == "y" {
                return [
                    ("empty bytes", .array(element: "y", [])), ("one NUL byte", .array(element: "y", [.byte(0)])),
                    ("\(hugeBytes.count) random bytes", .array(element: "y", hugeBytes.map { .byte($0) })),
                ]
            }
            if element.hasPrefix("{") {
                let inner = Signature.split(String(element.dropFirst().dropLast()))
                let (k, v) = (inner[0], inner.count > 1 ? inner[1] : "s")
                let many = (0..<settings.dictCount).map { i in
                    DBusDictEntry(k == "s" ? .string(randomKeys[i]) : Self.base(k), Self.base(v))
                }
                return [
                    ("empty dict", .dictionary(key: k, value: v, [])),
                    ("\(many.count) entries", .dictionary(key: k, value: v, many)),
                ]
            }
            let edge = edges(element).first.map { [$0.1] } ?? []
            return [
                ("empty array", .array(element: element, [])), ("one edge element", .array(element: element, edge)),
                (
                    "\(settings.arrayCount) elements",
                    .array(element: element, Array(repeating: Self.base(element), count: settings.arrayCount))
                ),
            ]
        case "(":
            let inner = Signature.split(String(type.dropFirst().dropLast()))
            return inner.indices.flatMap { i in
                edges(inner[i]).map { label, value in
                    var fields = inner.map(Self.base)
                    fields[i] = value
                    return ("field \(i) \(label)", .structure(fields))
                }
            }
        default: return []
        }
    }

    var variants: [(String, DBusValue)] {
        var nested: DBusValue = .string("deep")
        for _ in 0..<20 { nested = .variant(nested) }
        return [
            ("<huge string>", .variant(.string(hugeString))), ("<uint64 max>", .variant(.uint64(.max))),
            ("<int32 -1>", .variant(.int32(-1))), ("<NaN>", .variant(.double(.nan))), ("<true>", .variant(.bool(true))),
            ("<byte 255>", .variant(.byte(255))), ("<empty as>", .variant(.array(element: "s", []))),
            ("variant nested 20 deep", .variant(nested)),
            ("<a{sv} of variants>", .variant(.vardict([("k", .variant(.variant(.uint32(0))))]))),
            ("<control characters>", .variant(.string("\u{1}\n\u{1b}"))),
        ]
    }

    var vardicts: [(String, DBusValue)] {
        // Keys the plugins read, with values of every wrong kind, and keys nobody reads.
        let keys = [
            "patterns", "recursive", "undeploy_on_delete", "markers", "health", "timeout", "min_ready", "keep",
            "config",
            "force", "settle", "exclude", "target", "env", "version", "port", "name", "drain", "depth", "max_bytes",
        ]
        // `vardict` wraps each value in a variant.
        let wrongValues: [DBusValue] = [
            .string(hugeString), .uint64(.max), .double(.nan), .bool(true), .int32(-1), .strings(["", "\u{1}"]),
            .vardict([("x", .string(""))]), .string(""),
        ]
        var items: [(String, DBusValue)] = [("empty a{sv}", .vardict([]))]
        for (i, value) in wrongValues.enumerated() {
            items.append(("known keys with value kind \(i)", .vardict(keys.map { ($0, value) })))
        }
        items.append(("\(settings.dictCount) random keys", .vardict(randomKeys.map { ($0, .string("x")) })))
        items.append(("empty key", .vardict([("", .string("x"))])))
        items.append(("\(settings.stringBytes)-byte key", .vardict([(hugeString, .bool(true))])))
        items.append(("duplicate key", .vardict([("timeout", .string("1s")), ("timeout", .uint32(0))])))
        return items
    }

    /// Calls with a wrong signature for a method taking `types`.
    static func wrongSignatures(_ types: [String]) -> [FuzzCall] {
        let base = types.map(Self.base)
        var calls: [FuzzCall] = []
        if !types.isEmpty { calls.append(.init(kind: .wrongSignature, label: "no arguments", arguments: [])) }
        if types.count >= 2 {
            calls.append(
                .init(kind: .wrongSignature, label: "last argument missing", arguments: Array(base.dropLast())))
        }
        calls.append(.init(kind: .wrongSignature, label: "extra string argument", arguments: base + [.string("extra")]))
        calls.append(.init(kind: .wrongSignature, label: "extra a{sv} argument", arguments: base + [.vardict([])]))
        if !types.isEmpty {
            let swapped = types.map { $0 == "s" ? DBusValue.uint32(7) : .string("7") }
            calls.append(.init(kind: .wrongSignature, label: "every argument of another type", arguments: swapped))
            if types != ["v"] {
                calls.append(
                    .init(
                        kind: .wrongSignature, label: "arguments wrapped in a variant",
                        arguments: [.variant(.structure(base))]))
            }
        }
        return calls
    }
}

extension DBusValue {
    /// GVariant text for gdbus (basic types, arrays, dictionaries, variants).
    var gvariantText: String {
        switch self {
        case .byte(let v): return "byte \(v)"
        case .bool(let v): return v ? "true" : "false"
        case .int16(let v): return "int16 \(v)"
        case .uint16(let v): return "uint16 \(v)"
        case .int32(let v): return "int32 \(v)"
        case .uint32(let v): return "uint32 \(v)"
        case .int64(let v): return "int64 \(v)"
        case .uint64(let v): return "uint64 \(v)"
        case .double(let v): return "double \(v)"
        case .string(let v):
            return "'"
                + v.unicodeScalars.map { c -> String in
                    c.value > 0x7e || c.value < 0x20 || c == "'" || c == "\\"
                        ? String(format: "\\U%08x", c.value) : String(c)
                }.joined() + "'"
        case .objectPath(let v): return "objectpath '\(v)'"
        case .signature(let v): return "signature '\(v)'"
        case .variant(let inner): return "<" + inner.gvariantText + ">"
        case .structure(let items):
            return "(" + items.map(\.gvariantText).joined(separator: ", ") + (items.count == 1 ? ",)" : ")")
        case .dictionary(let k, let v, let entries):
            return "@a{\(k)\(v)} {"
                + entries.map { $0.key.gvariantText + ": " + $0.value.gvariantText }.joined(separator: ", ") + "}"
        case .array(let element, let items):
            return "@a\(element) [" + items.map(\.gvariantText).joined(separator: ", ") + "]"
        default: return "'?'"
        }
    }
}
