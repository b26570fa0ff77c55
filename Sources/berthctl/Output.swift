import BerthKit

/// A JSON value for `--json` output.
indirect enum JSON {
    case string(String)
    case int(Int64)
    case double(Double)
    case bool(Bool)
    case null
    case array([JSON])
    case object([(String, JSON)])

    var text: String {
        switch self {
        case .string(let s): Self.quote(s)
        case .int(let v): "\(v)"
        case .double(let v): v.isFinite ? "\(v)" : "null"
        case .bool(let v): v ? "true" : "false"
        case .null: "null"
        case .array(let items): "[" + items.map(\.text).joined(separator: ",") + "]"
        case .object(let pairs): "{" + pairs.map { Self.quote($0.0) + ":" + $0.1.text }.joined(separator: ",") + "}"
        }
    }

    static func quote(_ s: String) -> String { JSONString.quote(s) }

    /// A D-Bus value as JSON (variants unwrapped, dictionaries with string keys as objects).
    init(_ value: DBusValue) {
        switch value.unwrapped {
        case .bool(let v): self = .bool(v)
        case .double(let v): self = .double(v)
        case .string(let s), .objectPath(let s), .signature(let s): self = .string(s)
        case .uint64(let v): self = v <= UInt64(Int64.max) ? .int(Int64(v)) : .double(Double(v))
        case .array(_, let items), .structure(let items): self = .array(items.map(JSON.init))
        case .bytes(let bytes): self = .array(bytes.map { .int(Int64($0)) })
        case .dictionary(_, _, let entries):
            self = .object(entries.map { ($0.key.string ?? $0.key.description, JSON($0.value)) })
        case let other: self = other.int64.map { .int($0) } ?? .string(other.description)
        }
    }
}

import Glibc

enum Output {
    /// Writes one line straight to stdout, unbuffered (for streams such as `monitor` read through a pipe).
    static func line(_ text: String) {
        var line = text + "\n"
        _ = line.withUTF8 { write(1, $0.baseAddress, $0.count) }
    }

    /// Prints rows as an aligned table with a header (like systemctl), or `(none)` hints when empty.
    static func table(_ header: [String], _ rows: [[String]], empty: String) {
        guard !rows.isEmpty else {
            print(empty)
            return
        }
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, cell in
                i == cells.count - 1 ? cell : cell + String(repeating: " ", count: widths[i] - cell.count)
            }.joined(separator: "  ")
        }
        print(line(header))
        for row in rows { print(line(row)) }
    }

    /// Prints rows as a JSON array of objects with the given keys.
    static func json(_ keys: [String], _ rows: [[JSON]]) {
        print(JSON.array(rows.map { JSON.object(Array(zip(keys, $0))) }).text)
    }
}
