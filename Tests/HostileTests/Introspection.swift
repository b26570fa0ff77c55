import BerthKit

/// One object as `org.freedesktop.DBus.Introspectable.Introspect` describes it.
struct IntrospectedObject: Sendable {
    struct Method: Sendable {
        var name: String
        var inTypes: [String]
        var outTypes: [String]
        var inNames: [String] = []
    }
    struct Property: Sendable {
        var name: String
        var type: String
        var writable: Bool
        var readable: Bool
    }
    struct Interface: Sendable {
        var name: String
        var methods: [Method] = []
        var properties: [Property] = []
    }
    var path: String
    var interfaces: [Interface] = []
    var children: [String] = []
}

/// A very small reader for the introspection XML sd-bus writes: tags and their attributes, nothing more.
enum IntrospectionParser {
    struct Tag {
        var name: String
        var closing: Bool
        var selfClosing: Bool
        var attributes: [String: String]
    }

    static func tags(_ xml: String) -> [Tag] {
        var tags: [Tag] = []
        var rest = Substring(xml)
        while let open = rest.firstIndex(of: "<") {
            guard let close = rest[open...].firstIndex(of: ">") else { break }
            let body = rest[rest.index(after: open)..<close]
            rest = rest[rest.index(after: close)...]
            if body.hasPrefix("!") || body.hasPrefix("?") { continue }
            let closing = body.hasPrefix("/")
            let text = closing ? body.dropFirst() : body
            let name = String(text.prefix { !$0.isWhitespace && $0 != "/" })
            var attributes: [String: String] = [:]
            var scan = text.dropFirst(name.count)
            while let eq = scan.firstIndex(of: "=") {
                let key = scan[..<eq].trimmingCharacters(in: .whitespaces)
                let afterEq = scan[scan.index(after: eq)...]
                guard let q1 = afterEq.firstIndex(where: { $0 == "\"" || $0 == "'" }) else { break }
                let quote = afterEq[q1]
                let valueStart = afterEq.index(after: q1)
                guard let q2 = afterEq[valueStart...].firstIndex(of: quote) else { break }
                attributes[key] = unescape(String(afterEq[valueStart..<q2]))
                scan = afterEq[afterEq.index(after: q2)...]
            }
            tags.append(Tag(name: name, closing: closing, selfClosing: body.hasSuffix("/"), attributes: attributes))
        }
        return tags
    }

    static func unescape(_ s: String) -> String {
        s.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&amp;", with: "&")
    }

    static func parse(path: String, xml: String) -> IntrospectedObject {
        var object = IntrospectedObject(path: path)
        var depth = 0  // <node> depth: children are the nodes at depth 2
        var interface: IntrospectedObject.Interface?
        var method: IntrospectedObject.Method?
        for tag in tags(xml) {
            switch (tag.name, tag.closing) {
            case ("node", false):
                depth += 1
                if depth == 2, let name = tag.attributes["name"], !name.isEmpty {
                    object.children.append(path == "/" ? "/" + name : path + "/" + name)
                }
                if tag.selfClosing { depth -= 1 }
            case ("node", true): depth -= 1
            case ("interface", false): interface = .init(name: tag.attributes["name"] ?? "")
            case ("interface", true):
                if let i = interface { object.interfaces.append(i) }
                interface = nil
            case ("method", false):
                method = .init(name: tag.attributes["name"] ?? "", inTypes: [], outTypes: [])
                if tag.selfClosing {
                    interface?.methods.append(method!)
                    method = nil
                }
            case ("method", true):
                if let m = method { interface?.methods.append(m) }
                method = nil
            case ("arg", false):
                guard method != nil, let type = tag.attributes["type"] else { continue }
                if tag.attributes["direction"] == "out" {
                    method!.outTypes.append(type)
                } else {
                    method!.inTypes.append(type)
                    method!.inNames.append(tag.attributes["name"] ?? "")
                }
            case ("property", false):
                let access = tag.attributes["access"] ?? "read"
                interface?.properties.append(
                    .init(
                        name: tag.attributes["name"] ?? "", type: tag.attributes["type"] ?? "",
                        writable: access.contains("write"), readable: access.contains("read")))
            default: continue
            }
        }
        return object
    }
}

/// Splits D-Bus signatures into single complete types.
enum Signature {
    static func split(_ signature: String) -> [String] {
        var out: [String] = []
        var rest = Substring(signature)
        while !rest.isEmpty {
            let n = length(of: rest)
            out.append(String(rest.prefix(n)))
            rest = rest.dropFirst(n)
        }
        return out
    }

    /// The length of the first complete type at the start of `s`.
    static func length(of s: Substring) -> Int {
        guard let first = s.first else { return 0 }
        switch first {
        case "a": return 1 + length(of: s.dropFirst())
        case "(", "{":
            let closer: Character = first == "(" ? ")" : "}"
            var i = 1
            var rest = s.dropFirst()
            while let c = rest.first, c != closer {
                let n = length(of: rest)
                i += n
                rest = rest.dropFirst(n)
            }
            return i + 1
        default: return 1
        }
    }
}
