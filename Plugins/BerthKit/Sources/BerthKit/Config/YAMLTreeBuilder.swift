/// Builds a `ConfigNode` tree from parser events, enforcing berth's rules: one document, string keys, no
/// duplicate keys, no merge keys, only the standard tags, aliases that exist and do not contain themselves, and
/// limits on nesting and on the size aliases can expand a document to.
struct YAMLTreeBuilder {
    static let maxDepth = 256
    static let maxNodes = 1_000_000
    /// Aliases may grow a document's text (every scalar and key, each alias counted in full) to this many bytes, or
    /// to twice the document's own size if that is more. Without aliases the text never exceeds the document, so
    /// only aliases meet this limit: a 1 MiB anchor used 10,000 times is 10 GiB once a reader walks it (an
    /// environment built, an export written), though it stays under the node limit.
    static let minExpandedBytes = 4 << 20
    static let standardTagPrefix = "tag:yaml.org,2002:"

    /// A sequence or mapping still being read.
    private struct Frame {
        let isMapping: Bool
        let mark: ConfigMark
        let anchor: String?
        let path: String
        var items: [ConfigNode] = []
        var entries: [ConfigEntry] = []
        var pendingKey: (text: String, mark: ConfigMark)?
        var keyLines: [String: Int] = [:]
        var size = 1
        /// The bytes of every scalar and key inside, aliases expanded.
        var bytes = 0
    }

    /// Accept JSON only: double-quoted strings, JSON numbers, true, false, null, `[...]` and `{...}`.
    let json: Bool
    private var frames: [Frame] = []
    private var anchors: [String: Expansion] = [:]
    private var nodeCount = 0
    /// Bytes of scalar and key text so far, aliases expanded, and the most allowed.
    private var byteCount = 0
    private let maxBytes: Int
    private var documents = 0
    /// The document's root once it is complete; nil for an empty document.
    private(set) var root: ConfigNode?

    /// What an anchor stands for and what each alias of it adds to the document.
    private struct Expansion {
        var node: ConfigNode
        var size: Int
        var bytes: Int
    }

    /// `inputBytes`, the size of the document as written, sets how far aliases may grow it (see `minExpandedBytes`).
    init(json: Bool = false, inputBytes: Int = 0) {
        self.json = json
        maxBytes = max(Self.minExpandedBytes, inputBytes.multipliedReportingOverflow(by: 2).partialValue)
    }

    mutating func handle(_ event: YAMLEvent, at mark: ConfigMark) throws {
        if json { try checkJSON(event, at: mark) }
        switch event {
        case .streamStart, .streamEnd, .documentEnd:
            break
        case .documentStart:
            documents += 1
            if documents > 1 {
                throw BerthError.invalidConfig("\(mark): a second YAML document; a config file holds exactly one")
            }
        case .scalar(let text, let anchor, let tag, let style):
            let plain = style == .plain
            if awaitingKey {
                let node = try scalarNode(text, plain: plain, tag: tag, at: mark, path: currentPath)
                try takeKey(node, plainText: plain ? text : nil, at: mark)
                let bytes = text.utf8.count
                if let anchor { anchors[anchor] = Expansion(node: node, size: 1, bytes: bytes) }
                try count(1, bytes: bytes, at: mark)
                frames[frames.count - 1].bytes += bytes
            } else if frames.isEmpty && plain && tag == nil && anchor == nil && text.isEmpty {
                root = nil  // an empty document
            } else {
                let node = try scalarNode(text, plain: plain, tag: tag, at: mark, path: childPath)
                let bytes = text.utf8.count
                if let anchor { anchors[anchor] = Expansion(node: node, size: 1, bytes: bytes) }
                try count(1, bytes: bytes, at: mark)
                add(node, size: 1, bytes: bytes)
            }
        case .alias(let name):
            let resolved = try resolveAlias(name, at: mark)
            try count(resolved.size, bytes: resolved.bytes, at: mark)
            if awaitingKey {
                try takeKey(resolved.node.withMark(mark), plainText: nil, at: mark)
                frames[frames.count - 1].bytes += resolved.bytes
            } else {
                add(resolved.node.withMark(mark), size: resolved.size, bytes: resolved.bytes)
            }
        case .sequenceStart(let anchor, let tag, _), .mappingStart(let anchor, let tag, _):
            let isMapping = if case .mappingStart = event { true } else { false }
            try open(isMapping: isMapping, anchor: anchor, tag: tag, at: mark)
        case .sequenceEnd, .mappingEnd:
            let frame = frames.removeLast()
            let node: ConfigNode =
                frame.isMapping ? .mapping(frame.entries, frame.mark) : .sequence(frame.items, frame.mark)
            if let anchor = frame.anchor {
                anchors[anchor] = Expansion(node: node, size: frame.size, bytes: frame.bytes)
            }
            add(node, size: frame.size, bytes: frame.bytes)
        }
    }

    /// Rejects what YAML allows but JSON does not, before the event is used.
    private func checkJSON(_ event: YAMLEvent, at mark: ConfigMark) throws {
        let path = awaitingKey ? currentPath : childPath
        switch event {
        case .alias:
            throw failure(mark, path, "aliases (*name) are not JSON")
        case .scalar(let text, let anchor, let tag, let style):
            let value = YAMLScalar.quotedForMessage(text)
            if anchor != nil || tag != nil { throw failure(mark, path, "anchors and tags are not JSON") }
            if awaitingKey && style != .doubleQuoted {
                throw failure(mark, path, "\(value) is not a JSON key; keys need double quotes")
            }
            if style == .plain && text.isEmpty { throw failure(mark, path, "a JSON value is missing") }
            if style == .plain ? !YAMLScalar.isJSONLiteral(text) : style != .doubleQuoted {
                throw failure(mark, path, "\(value) is not a JSON value; strings need double quotes")
            }
        case .sequenceStart(let anchor, let tag, let flow), .mappingStart(let anchor, let tag, let flow):
            if anchor != nil || tag != nil { throw failure(mark, path, "anchors and tags are not JSON") }
            if !flow {
                throw failure(
                    mark, path, "YAML block syntax is not JSON; write [...] for a list and {...} for an object")
            }
        default:
            break
        }
    }

    // MARK: - Paths

    private var awaitingKey: Bool {
        guard let top = frames.last else { return false }
        return top.isMapping && top.pendingKey == nil
    }

    /// The key path of the innermost open collection.
    private var currentPath: String { frames.last?.path ?? "" }

    /// The key path of the next value: `parent.key` in a mapping, `parent[index]` in a sequence.
    private var childPath: String {
        guard let top = frames.last else { return "" }
        if let key = top.pendingKey { return ConfigReader.join(top.path, key.text) }
        return "\(top.path)[\(top.items.count)]"
    }

    private func failure(_ mark: ConfigMark, _ path: String, _ problem: String) -> BerthError {
        .invalidConfig(at: mark, path: path, problem)
    }

    // MARK: - Nodes

    private mutating func open(isMapping: Bool, anchor: String?, tag: String?, at mark: ConfigMark) throws {
        let kind = isMapping ? "a mapping" : "a list"
        if awaitingKey { throw failure(mark, currentPath, "a mapping key must be a string, got \(kind)") }
        if let tag, tag != "!", tag != Self.standardTagPrefix + (isMapping ? "map" : "seq") {
            throw failure(mark, childPath, "unsupported tag \(Self.shortTag(tag)) on \(kind)")
        }
        if frames.count >= Self.maxDepth {
            throw failure(mark, childPath, "nesting is deeper than \(Self.maxDepth) levels")
        }
        try count(1, bytes: 0, at: mark)
        frames.append(Frame(isMapping: isMapping, mark: mark, anchor: anchor, path: childPath))
    }

    private mutating func add(_ node: ConfigNode, size: Int, bytes: Int) {
        guard !frames.isEmpty else {
            root = node
            return
        }
        let top = frames.count - 1
        frames[top].size += size
        frames[top].bytes += bytes
        if let key = frames[top].pendingKey {
            frames[top].entries.append(ConfigEntry(key: key.text, keyMark: key.mark, value: node))
            frames[top].pendingKey = nil
        } else {
            frames[top].items.append(node)
        }
    }

    private mutating func takeKey(_ node: ConfigNode, plainText: String?, at mark: ConfigMark) throws {
        let top = frames.count - 1
        let path = frames[top].path
        if plainText == "<<" {
            throw failure(mark, path, "merge keys (<<) are not supported; write the keys out")
        }
        if plainText == "" { throw failure(mark, path, "a mapping key must not be empty") }
        guard case .scalar(let key, _, _) = node else {
            let hint = plainText.map { " (quote it if you mean the string \(YAMLScalar.doubleQuoted($0)))" } ?? ""
            throw failure(mark, path, "a mapping key must be a string, got \(node.kindName)\(hint)")
        }
        if let first = frames[top].keyLines[key] {
            throw failure(
                mark, ConfigReader.join(path, key),
                "duplicate key \(YAMLScalar.doubleQuoted(key)) (first defined at line \(first))")
        }
        frames[top].keyLines[key] = mark.line
        frames[top].pendingKey = (key, mark)
    }

    private func resolveAlias(_ name: String, at mark: ConfigMark) throws -> Expansion {
        let path = awaitingKey ? currentPath : childPath
        if frames.contains(where: { $0.anchor == name }) {
            throw failure(mark, path, "alias *\(name) refers to a node that contains it")
        }
        guard let resolved = anchors[name] else {
            throw failure(mark, path, "unknown alias *\(name) (no anchor &\(name) before it)")
        }
        return resolved
    }

    private mutating func count(_ nodes: Int, bytes: Int, at mark: ConfigMark) throws {
        nodeCount += nodes
        if nodeCount > Self.maxNodes {
            throw BerthError.invalidConfig(
                "\(mark): the document grows past \(Self.maxNodes) nodes once its aliases are expanded")
        }
        byteCount += bytes
        if byteCount > maxBytes {
            throw BerthError.invalidConfig(
                "\(mark): the document grows past \(FileSystem.describeSize(Int64(maxBytes))) of text once its "
                    + "aliases are expanded (each alias counts in full)")
        }
    }

    /// A scalar as the tree holds it: plain null forms become `.null`, standard tags are checked against the text.
    private func scalarNode(_ text: String, plain: Bool, tag: String?, at mark: ConfigMark, path: String) throws
        -> ConfigNode
    {
        let value = YAMLScalar.quotedForMessage(text)
        switch tag.map({
            $0.hasPrefix(Self.standardTagPrefix) ? String($0.dropFirst(Self.standardTagPrefix.count)) : $0
        }) {
        case nil:
            return plain && YAMLScalar.isNull(text) ? .null(mark) : .scalar(text, mark, quoted: !plain)
        case "!", "str":
            return .scalar(text, mark, quoted: true)
        case "null":
            guard YAMLScalar.isNull(text) else { throw failure(mark, path, "\(value) is not null (tagged !!null)") }
            return .null(mark)
        case "bool":
            guard YAMLScalar.bool(text) != nil else {
                throw failure(mark, path, "\(value) is not a boolean (tagged !!bool)")
            }
            return .scalar(text, mark, quoted: false)
        case "int":
            guard YAMLScalar.integer(text) != .invalid else {
                throw failure(mark, path, "\(value) is not an integer (tagged !!int)")
            }
            return .scalar(text, mark, quoted: false)
        case "float":
            guard YAMLScalar.isDecimal(text) || YAMLScalar.isSpecialFloat(text) else {
                throw failure(mark, path, "\(value) is not a number (tagged !!float)")
            }
            return .scalar(text, mark, quoted: false)
        default:
            throw failure(mark, path, "unsupported tag \(Self.shortTag(tag ?? ""))")
        }
    }

    /// `!!str` for `tag:yaml.org,2002:str`; any other tag as written.
    static func shortTag(_ tag: String) -> String {
        tag.hasPrefix(standardTagPrefix) ? "!!" + tag.dropFirst(standardTagPrefix.count) : tag
    }
}
