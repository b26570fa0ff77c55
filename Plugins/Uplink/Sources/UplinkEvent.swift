import BerthKit
import Glibc

/// A JSON value for message payloads (BerthKit and plugins use no Foundation).
enum JSONValue: Sendable, Equatable {
    case string(String)
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    case bool(Bool)
    case array([JSONValue])
    case object([(String, JSONValue)])
    case null

    static func == (a: JSONValue, b: JSONValue) -> Bool { a.text == b.text }

    var text: String {
        switch self {
        case .string(let s): JSONString.quote(s)
        case .int(let v): String(v)
        case .uint(let v): String(v)
        case .double(let v): v.isFinite ? "\(v)" : "null"
        case .bool(let v): v ? "true" : "false"
        case .array(let items): "[" + items.map(\.text).joined(separator: ",") + "]"
        case .object(let pairs):
            "{" + pairs.map { JSONString.quote($0.0) + ":" + $0.1.text }.joined(separator: ",") + "}"
        case .null: "null"
        }
    }

    /// A D-Bus value as JSON: dictionaries with string keys become objects, structs and arrays arrays.
    init(_ value: DBusValue) {
        switch value {
        case .byte(let v): self = .uint(UInt64(v))
        case .bool(let v): self = .bool(v)
        case .int16(let v): self = .int(Int64(v))
        case .uint16(let v): self = .uint(UInt64(v))
        case .int32(let v): self = .int(Int64(v))
        case .uint32(let v): self = .uint(UInt64(v))
        case .int64(let v): self = .int(v)
        case .uint64(let v): self = .uint(v)
        case .double(let v): self = .double(v)
        case .string(let s), .objectPath(let s), .signature(let s): self = .string(s)
        case .unixFD: self = .null
        case .bytes(let b): self = .array(b.map { .uint(UInt64($0)) })
        case .array(_, let items), .structure(let items): self = .array(items.map(JSONValue.init))
        case .dictionary(_, _, let entries):
            self = .object(entries.map { ($0.key.string ?? $0.key.description, JSONValue($0.value)) })
        case .variant(let inner): self = JSONValue(inner)
        }
    }
}

/// Something that happened on the host, before it becomes a message: `plugin.event` and its fields.
struct UplinkEvent: Sendable {
    var plugin: String
    var event: String
    var fields: [(String, JSONValue)]
    var timeUSec: UInt64 = SystemClock.wallUSec()

    var name: String { plugin + "." + event }
}

/// Who this host is, in every message.
struct HostIdentity: Sendable, Equatable {
    var host: String
    var machineID: String

    static func current(hostOverride: String?) -> HostIdentity {
        var buffer = [CChar](repeating: 0, count: 256)
        let name =
            gethostname(&buffer, buffer.count - 1) == 0
            ? buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) } : "localhost"
        var machine = ""
        for path in ["/etc/machine-id", "/var/lib/dbus/machine-id"] {
            if let text = try? FileSystem.readText(path, limit: 4096) {
                machine = text.filter { !$0.isWhitespace }
                if !machine.isEmpty { break }
            }
        }
        return HostIdentity(host: hostOverride ?? name.replacing("/", with: "_"), machineID: machine)
    }
}

/// The JSON message written to the outbox and sent: schema version, unique id, host, time, event and fields.
enum UplinkMessage {
    static let schema = 1

    static func newID() -> String {
        var generator = SystemRandomNumberGenerator()
        let (a, b) = (generator.next() as UInt64, generator.next() as UInt64)
        var bytes =
            (0..<8).map { UInt8(truncatingIfNeeded: a >> ($0 * 8)) }
            + (0..<8).map {
                UInt8(truncatingIfNeeded: b >> ($0 * 8))
            }
        bytes[6] = (bytes[6] & 0x0f) | 0x40
        bytes[8] = (bytes[8] & 0x3f) | 0x80
        let hex = bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }
        return [hex[0..<4], hex[4..<6], hex[6..<8], hex[8..<10], hex[10..<16]].map { $0.joined() }.joined(
            separator: "-")
    }

    static func payload(id: String, event: UplinkEvent, identity: HostIdentity) -> String {
        JSONValue.object([
            ("schema", .int(Int64(schema))), ("id", .string(id)), ("machine_id", .string(identity.machineID)),
            ("host", .string(identity.host)), ("time_usec", .uint(event.timeUSec)),
            ("time", .string(isoTime(event.timeUSec))), ("plugin", .string(event.plugin)),
            ("event", .string(event.event)), ("fields", .object(event.fields)),
        ]).text
    }

    /// `2026-12-03T20:43:09.123456Z`
    static func isoTime(_ usec: UInt64) -> String {
        var seconds = time_t(usec / 1_000_000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ v: Int32, _ n: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, n - s.count)) + s
        }
        let micro = String(usec % 1_000_000)
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))."
            + String(repeating: "0", count: 6 - micro.count) + micro + "Z"
    }
}
