/// A strict reader over one mapping of a configuration file.
///
/// Every accessor records the key it was asked about and marks it read; `finish()` then rejects the first key
/// nobody read, listing the keys that were asked about, so a typo is an error and not a silently ignored setting:
///
///     let laser = try ConfigReader(node, path: "services.laser")
///     let exec = try laser.stringList("exec")
///     let restart = try laser.oneOf("restart", ["no", "on-failure", "always"]) ?? "no"
///     try laser.finish()
///
/// A key that is absent or has an empty (null) value reads as nil. Every error is a `BerthError(.invalidConfig)`
/// in the form `FILE:LINE: KEY.PATH: problem`, at the line of the value (of the key, for an unknown key).
public final class ConfigReader {
    /// The key path of this mapping, e.g. `services.laser`; empty at the root of a file.
    public let path: String
    /// Where the mapping starts.
    public let mark: ConfigMark
    private let allEntries: [ConfigEntry]
    private let index: [String: Int]
    private var asked: Set<String> = []
    private var read: Set<String> = []

    /// A reader over `node`, which must be a mapping; null (an empty section such as `services:`) reads as an
    /// empty mapping.
    public init(_ node: ConfigNode, path: String) throws {
        switch node {
        case .mapping(let entries, let mark):
            allEntries = entries
            self.mark = mark
        case .null(let mark):
            allEntries = []
            self.mark = mark
        default:
            throw BerthError.invalidConfig(
                at: node.mark, path: path, "expected a mapping, got \(Self.describe(node))")
        }
        self.path = path
        var index: [String: Int] = [:]
        for (position, entry) in allEntries.enumerated() { index[entry.key] = position }
        self.index = index
    }

    /// Whether the key is present with a value (an empty value counts as absent, as in every accessor). The key is
    /// recorded as known but not as read.
    public func has(_ key: String) -> Bool {
        asked.insert(key)
        guard let position = index[key] else { return false }
        if case .null = allEntries[position].value { return false }
        return true
    }

    /// The raw value of the key, null included, marked as read.
    public func node(_ key: String) -> ConfigNode? {
        asked.insert(key)
        read.insert(key)
        return index[key].map { allEntries[$0].value }
    }

    /// A reader over the nested mapping at `key`, its path extended by the key; nil when the key is absent. An
    /// empty (null) section gives an empty reader.
    public func reader(_ key: String) throws -> ConfigReader? {
        guard let value = node(key) else { return nil }
        return try ConfigReader(value, path: keyPath(key))
    }

    /// Every entry in document order, all marked as read: for mappings whose keys are names the user chose.
    public func entries() -> [ConfigEntry] {
        for entry in allEntries { read.insert(entry.key) }
        return allEntries
    }

    /// The value of a key that must be set, read with any accessor:
    /// `try reader.required("exec", reader.stringList)` or `try reader.required("port") { try reader.int($0) }`.
    /// A missing key is an error at the mapping (`missing required key "exec"`), an empty value one at the value.
    public func required<Value>(_ key: String, _ accessor: (String) throws -> Value?) throws -> Value {
        if let value = try accessor(key) { return value }
        if let position = index[key] {
            throw BerthError.invalidConfig(
                at: allEntries[position].value.mark, path: keyPath(key), "a value is required")
        }
        throw BerthError.invalidConfig(at: mark, path: path, "missing required key \(YAMLScalar.doubleQuoted(key))")
    }

    /// The keys present, in document order, without marking anything read.
    public var keys: [String] { allEntries.map(\.key) }

    /// Throws for the first key (in document order) that no accessor read.
    public func finish() throws {
        guard let unknown = allEntries.first(where: { !read.contains($0.key) }) else { return }
        let known = asked.sorted()
        let hint = known.isEmpty ? "no keys are allowed here" : "known keys: " + known.joined(separator: ", ")
        throw BerthError.invalidConfig(
            at: unknown.keyMark, path: keyPath(unknown.key),
            "unknown key \(YAMLScalar.doubleQuoted(unknown.key)) (\(hint))")
    }

    /// The full key path of a key of this mapping, e.g. `services.laser.restart`.
    public func keyPath(_ key: String) -> String { Self.join(path, key) }

    /// An error about the value of `key` in the reader's format, for checks the accessors cannot make (a file that
    /// does not exist, two settings that contradict each other). Falls back to the mapping's mark if the key is
    /// absent.
    public func error(_ key: String, _ problem: String) -> BerthError {
        let at = index[key].map { allEntries[$0].value.mark } ?? mark
        return .invalidConfig(at: at, path: keyPath(key), problem)
    }

    /// `parent.key`, or just `key` at the root.
    public static func join(_ path: String, _ key: String) -> String {
        path.isEmpty ? key : path + "." + key
    }

    // MARK: - For the typed accessors

    /// The entry of `key`, recorded as asked and read; nil when absent or null.
    func entry(_ key: String) -> ConfigEntry? {
        asked.insert(key)
        read.insert(key)
        guard let position = index[key] else { return nil }
        if case .null = allEntries[position].value { return nil }
        return allEntries[position]
    }

    /// An error at the entry's value.
    func failure(_ entry: ConfigEntry, _ problem: String) -> BerthError {
        .invalidConfig(at: entry.value.mark, path: keyPath(entry.key), problem)
    }

    /// A value as messages show it: a scalar's text in quotes, the kind of anything else.
    static func describe(_ node: ConfigNode) -> String {
        if case .scalar(let text, _, _) = node { return YAMLScalar.quotedForMessage(text) }
        return node.kindName
    }
}
