import BerthKit

/// A small JSON writer for the files this plugin keeps (instance records, appcfg.json): values are built as a
/// tree and written with stable key order. Reading goes through `YAMLParser.parseJSON` and `ConfigReader`.
indirect enum JSONText: Sendable, Equatable {
    case string(String)
    case int(Int64)
    case bool(Bool)
    case null
    case array([JSONText])
    case object([(String, JSONText)])

    static func == (a: JSONText, b: JSONText) -> Bool { a.text == b.text }

    var text: String {
        var out = ""
        write(into: &out, indent: "")
        return out
    }

    private func write(into out: inout String, indent: String) {
        switch self {
        case .string(let s): out += Self.quote(s)
        case .int(let n): out += String(n)
        case .bool(let b): out += b ? "true" : "false"
        case .null: out += "null"
        case .array(let items):
            if items.isEmpty {
                out += "[]"
                return
            }
            out += "["
            for (i, item) in items.enumerated() {
                out += i == 0 ? "" : ", "
                item.write(into: &out, indent: indent)
            }
            out += "]"
        case .object(let pairs):
            if pairs.isEmpty {
                out += "{}"
                return
            }
            let inner = indent + "  "
            out += "{\n"
            for (i, (key, value)) in pairs.enumerated() {
                out += inner + Self.quote(key) + ": "
                value.write(into: &out, indent: inner)
                out += i == pairs.count - 1 ? "\n" : ",\n"
            }
            out += indent + "}"
        }
    }

    static func quote(_ s: String) -> String { JSONString.quote(s) }

    /// A config tree (parsed JSON) written back as JSON: plain scalars that read as numbers, booleans or null stay
    /// bare, everything else is a string.
    static func from(_ node: ConfigNode) -> JSONText {
        switch node {
        case .null: return .null
        case .scalar(let text, _, let quoted):
            if !quoted {
                if let n = Int64(text) { return .int(n) }
                if text == "true" || text == "false" { return .bool(text == "true") }
                if text == "null" { return .null }
            }
            return .string(text)
        case .sequence(let items, _): return .array(items.map(from))
        case .mapping(let entries, _): return .object(entries.map { ($0.key, from($0.value)) })
        }
    }
}
