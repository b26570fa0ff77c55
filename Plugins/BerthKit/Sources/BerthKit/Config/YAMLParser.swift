import Glibc

/// Parses YAML (and JSON, which is YAML) into a `ConfigNode` tree with the line and column of every node.
///
/// Stricter than YAML itself, because a typo in a config file should be an error and not a surprise: one document
/// per text, string keys only, no duplicate keys, no merge keys (`<<`), only the standard tags (`!!str`, `!!int`,
/// ...), and aliases only to anchors defined before them and outside themselves. Every error is a
/// `BerthError(.invalidConfig)` whose message starts with `FILE:LINE:`.
public enum YAMLParser {
    /// The largest file `parseFile` reads: far beyond any configuration, short of exhausting memory.
    public static let maxFileSize = 64 << 20

    /// Parses one YAML document; nil when the text holds none (empty, or only comments).
    public static func parse(_ text: String, file: String) throws -> ConfigNode? {
        try parse(bytes: Array(text.utf8), file: file)
    }

    /// Reads and parses a file; marks and messages name the file by `path` as given.
    public static func parseFile(atPath path: String) throws -> ConfigNode? {
        try parse(bytes: readFile(atPath: path), file: path)
    }

    /// Parses a JSON value (an object, usually) with the same parser and rules, into the same tree: JSON strings
    /// are quoted scalars, numbers and booleans plain ones. `source` names the input in messages, like a file name.
    /// Empty input is an error, not an empty object; so is YAML that is not JSON (unquoted strings, block syntax,
    /// a missing value). Like YAML, it still accepts a trailing comma and `#` comments.
    public static func parseJSON(_ text: String, source: String) throws -> ConfigNode {
        guard text.contains(where: { !$0.isWhitespace }) else {
            throw BerthError.invalidConfig("\(source): the input is empty; expected a JSON value such as {}")
        }
        guard let node = try parse(bytes: Array(text.utf8), file: source, json: true) else {
            throw BerthError.invalidConfig("\(source): the input holds no JSON value; expected one such as {}")
        }
        return node
    }

    static func parse(bytes: [UInt8], file: String, json: Bool = false) throws -> ConfigNode? {
        var builder = YAMLTreeBuilder(json: json, inputBytes: bytes.count)
        try YAMLEventReader.read(bytes, file: file) { event, mark in
            try builder.handle(event, at: mark)
        }
        return builder.root
    }

    /// The whole file, or an error naming the path and the reason. Only a regular file of at most `maxFileSize`
    /// bytes is read, and opening never waits: a FIFO, a device or a file of /proc given as a config file is an
    /// error at once, never a daemon that hangs at start or a read that does not end.
    static func readFile(atPath path: String) throws -> [UInt8] {
        func failure(_ reason: String) -> BerthError { .invalidConfig("\(path): cannot read the file: \(reason)") }
        do {
            guard let fd = try FileSystem.openForReading(path) else { throw failure(systemErrorText(ENOENT)) }
            defer { close(fd) }
            // Without a stop condition the read always ends with the bytes or an error.
            return try FileSystem.readToEnd(fd, path: path, limit: maxFileSize) ?? []
        } catch let refusal as FileRefusal {
            throw failure("it " + refusal.reason)
        } catch let error as SystemError {
            throw failure(systemErrorText(error.errno))
        }
    }
}
