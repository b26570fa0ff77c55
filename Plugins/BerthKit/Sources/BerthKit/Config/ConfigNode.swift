/// Where a node of a configuration file starts: the file and a 1-based line and column.
public struct ConfigMark: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    /// The mark of nodes built in code rather than read from a file.
    public static let generated = ConfigMark(file: "<generated>", line: 0, column: 0)

    /// `file:line`, the prefix of every configuration error; `source, line N` for a source that is not a plain
    /// file name (`Define("x") by :1.52, line 2`), where a glued `:2` would read as part of the name.
    public var description: String { Self.location(file, line: line) }

    /// Where line `line` of `source` is, as `description` writes it: the one place a source and a line are joined.
    static func location(_ source: String, line: Int) -> String {
        source.contains(where: { $0 == " " || $0 == ":" }) ? "\(source), line \(line)" : "\(source):\(line)"
    }
}

/// One `key: value` pair of a mapping, with the position of the key.
public struct ConfigEntry: Sendable, Equatable {
    public var key: String
    public var keyMark: ConfigMark
    public var value: ConfigNode

    public init(key: String, keyMark: ConfigMark, value: ConfigNode) {
        self.key = key
        self.keyMark = keyMark
        self.value = value
    }
}

/// A parsed YAML (or JSON) document: scalars keep their text, mappings keep document order, every node its mark.
///
/// A scalar is `quoted` when it was single- or double-quoted or a block scalar (`|`, `>`), or carried the `!!str`
/// tag: such a scalar is always a string and never read as a boolean, a number or null.
public indirect enum ConfigNode: Sendable, Equatable {
    case scalar(String, ConfigMark, quoted: Bool)
    case sequence([ConfigNode], ConfigMark)
    case mapping([ConfigEntry], ConfigMark)
    case null(ConfigMark)

    public var mark: ConfigMark {
        switch self {
        case .scalar(_, let mark, _), .sequence(_, let mark), .mapping(_, let mark), .null(let mark): mark
        }
    }

    /// The kind of node for messages: "a string", "a list", "a mapping" or "null".
    public var kindName: String {
        switch self {
        case .scalar: "a string"
        case .sequence: "a list"
        case .mapping: "a mapping"
        case .null: "null"
        }
    }

    /// The same node at another mark (its children keep theirs).
    public func withMark(_ mark: ConfigMark) -> ConfigNode {
        switch self {
        case .scalar(let text, _, let quoted): .scalar(text, mark, quoted: quoted)
        case .sequence(let items, _): .sequence(items, mark)
        case .mapping(let entries, _): .mapping(entries, mark)
        case .null: .null(mark)
        }
    }

    /// The value of `key` when this node is a mapping (the last one, should a built tree repeat a key).
    public subscript(key: String) -> ConfigNode? {
        guard case .mapping(let entries, _) = self else { return nil }
        return entries.last(where: { $0.key == key })?.value
    }

    /// The text of a scalar, nil for any other node.
    public var scalarText: String? {
        if case .scalar(let text, _, _) = self { return text }
        return nil
    }
}

// MARK: - Building trees in code

extension ConfigNode {
    /// A string scalar (always a string, whatever its text looks like).
    public static func string(_ text: String) -> ConfigNode {
        .scalar(text, .generated, quoted: true)
    }

    /// A plain scalar read like YAML would: `bool(true)` is `true`, `int(5)` is `5`.
    public static func plain(_ text: String) -> ConfigNode {
        .scalar(text, .generated, quoted: false)
    }

    public static func bool(_ value: Bool) -> ConfigNode { .plain(value ? "true" : "false") }
    public static func int<T: BinaryInteger>(_ value: T) -> ConfigNode { .plain(String(value)) }
    /// A number; infinities and not-a-number as YAML writes them (`.inf`, `-.inf`, `.nan`).
    public static func double(_ value: Double) -> ConfigNode {
        if value.isNaN { return .plain(".nan") }
        if value.isInfinite { return .plain(value < 0 ? "-.inf" : ".inf") }
        return .plain(String(value))
    }

    public static func list(_ items: [ConfigNode]) -> ConfigNode {
        .sequence(items, .generated)
    }

    public static func map(_ pairs: [(String, ConfigNode)]) -> ConfigNode {
        .mapping(pairs.map { ConfigEntry(key: $0.0, keyMark: .generated, value: $0.1) }, .generated)
    }
}

// MARK: - Comparing trees

extension ConfigNode {
    /// The same tree with every mark replaced by `ConfigMark.generated`, for comparing content.
    ///
    /// Quoting is normalized too where it means nothing: a scalar whose text could not be read as a boolean, a
    /// number or null is a string either way, so it compares as quoted. An unquoted scalar whose text reads as
    /// null (`~`, `null`, empty) becomes `.null`, which is what the parser makes of it.
    public func strippingMarks() -> ConfigNode {
        switch self {
        case .scalar(let text, _, let quoted):
            if !quoted && YAMLScalar.isNull(text) { return .null(.generated) }
            return .scalar(text, .generated, quoted: quoted || !YAMLScalar.resolvesAsNonString(text))
        case .sequence(let items, _):
            return .sequence(items.map { $0.strippingMarks() }, .generated)
        case .mapping(let entries, _):
            return .mapping(
                entries.map { ConfigEntry(key: $0.key, keyMark: .generated, value: $0.value.strippingMarks()) },
                .generated)
        case .null:
            return .null(.generated)
        }
    }
}
