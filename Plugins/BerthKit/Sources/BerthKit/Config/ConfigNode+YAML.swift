// The emitter behind ExportConfig: block-style YAML with 2-space indentation that parses back to the same tree.

extension ConfigNode {
    /// The node as a YAML document (ending in a newline). Strings are plain unless they need double quotes: empty,
    /// leading or trailing spaces, YAML punctuation, text a reader could take for a boolean, number or null, and
    /// anything not printable (escaped, so a newline is written `\n`). Empty collections are `{}` and `[]`, null is
    /// `null`. `YAMLParser.parse(node.yamlText(), ...)` gives back the same tree, as `strippingMarks()` compares it.
    public func yamlText() -> String {
        var out = ""
        switch self {
        case .mapping(let entries, _) where !entries.isEmpty:
            Self.emit(entries, indent: 0, onOpenLine: false, into: &out)
        case .sequence(let items, _) where !items.isEmpty:
            Self.emit(items, indent: 0, onOpenLine: false, into: &out)
        default:
            out = Self.inline(self) + "\n"
        }
        return out
    }

    /// Entries at `indent`; with `onOpenLine`, the first one goes on a line already started (after `- `).
    private static func emit(_ entries: [ConfigEntry], indent: Int, onOpenLine: Bool, into out: inout String) {
        for (position, entry) in entries.enumerated() {
            if position > 0 || !onOpenLine { out += String(repeating: " ", count: indent) }
            out += key(entry.key) + ":"
            switch entry.value {
            case .mapping(let nested, _) where !nested.isEmpty:
                out += "\n"
                emit(nested, indent: indent + 2, onOpenLine: false, into: &out)
            case .sequence(let items, _) where !items.isEmpty:
                out += "\n"
                emit(items, indent: indent + 2, onOpenLine: false, into: &out)
            default:
                out += " " + inline(entry.value) + "\n"
            }
        }
    }

    /// Items at `indent`, each after `- `; with `onOpenLine`, the first one goes on a line already started.
    private static func emit(_ items: [ConfigNode], indent: Int, onOpenLine: Bool, into out: inout String) {
        for (position, item) in items.enumerated() {
            if position > 0 || !onOpenLine { out += String(repeating: " ", count: indent) }
            out += "- "
            switch item {
            case .mapping(let nested, _) where !nested.isEmpty:
                emit(nested, indent: indent + 2, onOpenLine: true, into: &out)
            case .sequence(let nested, _) where !nested.isEmpty:
                emit(nested, indent: indent + 2, onOpenLine: true, into: &out)
            default:
                out += inline(item) + "\n"
            }
        }
    }

    /// A scalar, null or empty collection on one line.
    private static func inline(_ node: ConfigNode) -> String {
        switch node {
        case .scalar(let text, _, let quoted): scalar(text, quoted: quoted)
        case .null: "null"
        case .mapping: "{}"
        case .sequence: "[]"
        }
    }

    /// An unquoted scalar that reads as a boolean, number or null stays plain to keep that meaning; anything else
    /// is a string, plain when that is safe and double-quoted otherwise.
    private static func scalar(_ text: String, quoted: Bool) -> String {
        if !quoted && YAMLScalar.isNull(text) { return "null" }
        if !quoted && YAMLScalar.resolvesAsNonString(text) { return text }
        return YAMLScalar.needsQuotes(text) ? YAMLScalar.doubleQuoted(text) : text
    }

    private static func key(_ text: String) -> String {
        YAMLScalar.needsQuotes(text) ? YAMLScalar.doubleQuoted(text) : text
    }
}
