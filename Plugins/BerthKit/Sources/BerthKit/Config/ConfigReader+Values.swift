// The typed accessors of ConfigReader: strings, booleans, numbers, choices, lists and maps of strings.
// Booleans and numbers must be written without quotes: a quoted value is a string by YAML's rules.

extension ConfigReader {
    /// Any scalar, as written (an unquoted `8080` or `yes` gives its text).
    public func string(_ key: String) throws -> String? {
        guard let entry = entry(key) else { return nil }
        guard case .scalar(let text, _, _) = entry.value else {
            throw failure(entry, "expected a string, got \(entry.value.kindName)")
        }
        return text
    }

    /// A string that is not empty and not only spaces.
    public func nonEmptyString(_ key: String) throws -> String? {
        guard let text = try string(key) else { return nil }
        guard text.contains(where: { !$0.isWhitespace }) else {
            throw failure(entry(key)!, "expected a non-empty string, got \(YAMLScalar.quotedForMessage(text))")
        }
        return text
    }

    /// `true`/`false`, `yes`/`no` or `on`/`off`, unquoted.
    public func bool(_ key: String) throws -> Bool? {
        let text = try plainScalar(key, expected: "a boolean (true or false)")
        guard let (entry, text) = text else { return nil }
        guard let value = YAMLScalar.bool(text) else {
            throw failure(entry, "\(YAMLScalar.quotedForMessage(text)) is not a boolean (use true or false)")
        }
        return value
    }

    /// A whole number, unquoted (`8080`, `-1`, `1_000`, `0x1F`), within `range` when one is given.
    public func int(_ key: String, in range: ClosedRange<Int>? = nil) throws -> Int? {
        guard let (entry, text) = try plainScalar(key, expected: "an integer") else { return nil }
        guard let value = YAMLScalar.int(text) else {
            let problem = YAMLScalar.integer(text) == .invalid ? "is not an integer" : "is out of range"
            throw failure(entry, "\(YAMLScalar.quotedForMessage(text)) \(problem)")
        }
        if let range, !range.contains(value) {
            throw failure(entry, "\(value) is not between \(range.lowerBound) and \(range.upperBound)")
        }
        return value
    }

    /// A whole number of zero or more, unquoted, within `range` when one is given.
    public func uint64(_ key: String, in range: ClosedRange<UInt64>? = nil) throws -> UInt64? {
        guard let (entry, text) = try plainScalar(key, expected: "an integer") else { return nil }
        let value: UInt64
        switch YAMLScalar.integer(text) {
        case .valid(let negative, let magnitude) where !negative || magnitude == 0:
            value = magnitude
        case .valid:
            throw failure(entry, "\(YAMLScalar.quotedForMessage(text)) is negative; expected zero or more")
        case .tooLarge:
            throw failure(entry, "\(YAMLScalar.quotedForMessage(text)) is out of range")
        case .invalid:
            throw failure(entry, "\(YAMLScalar.quotedForMessage(text)) is not an integer")
        }
        if let range, !range.contains(value) {
            throw failure(entry, "\(value) is not between \(range.lowerBound) and \(range.upperBound)")
        }
        return value
    }

    /// A finite number, unquoted (`0.5`, `-2`, `1e3`), within `range` when one is given.
    public func double(_ key: String, in range: ClosedRange<Double>? = nil) throws -> Double? {
        guard let (entry, text) = try plainScalar(key, expected: "a number") else { return nil }
        guard let value = YAMLScalar.double(text) else {
            throw failure(entry, "\(YAMLScalar.quotedForMessage(text)) is not a number")
        }
        if let range, !range.contains(value) {
            throw failure(entry, "\(text) is not between \(range.lowerBound) and \(range.upperBound)")
        }
        return value
    }

    /// One of the allowed words, compared exactly (so `restart: no` gives "no", not a boolean).
    public func oneOf(_ key: String, _ allowed: [String]) throws -> String? {
        guard let text = try string(key) else { return nil }
        guard allowed.contains(text) else {
            throw failure(
                entry(key)!, "\(YAMLScalar.quotedForMessage(text)) is not one of \(allowed.joined(separator: ", "))")
        }
        return text
    }

    /// A list of strings (a single string is an error, not a list of one). An empty list gives `[]`.
    public func stringList(_ key: String) throws -> [String]? {
        guard let entry = entry(key) else { return nil }
        guard case .sequence(let items, _) = entry.value else {
            throw failure(entry, "expected a list of strings, got \(Self.describe(entry.value))")
        }
        return try items.enumerated().map { position, item in
            guard case .scalar(let text, _, _) = item else {
                throw BerthError.invalidConfig(
                    at: item.mark, path: "\(keyPath(key))[\(position)]", "expected a string, got \(item.kindName)")
            }
            return text
        }
    }

    /// A mapping of names to scalars, in document order; numbers and booleans keep their text (`PORT: 8080`).
    public func stringMap(_ key: String) throws -> [(String, String)]? {
        guard let entry = entry(key) else { return nil }
        guard case .mapping(let entries, _) = entry.value else {
            throw failure(entry, "expected a mapping of strings, got \(Self.describe(entry.value))")
        }
        return try entries.map { item in
            guard case .scalar(let text, _, _) = item.value else {
                throw BerthError.invalidConfig(
                    at: item.value.mark, path: ConfigReader.join(keyPath(key), item.key),
                    "expected a string, got \(item.value.kindName)")
            }
            return (item.key, text)
        }
    }

    /// The text of an unquoted scalar, for booleans and numbers; a quoted one is a string and an error here.
    private func plainScalar(_ key: String, expected: String) throws -> (ConfigEntry, String)? {
        guard let entry = entry(key) else { return nil }
        switch entry.value {
        case .scalar(let text, _, quoted: false):
            return (entry, text)
        case .scalar(let text, _, quoted: true):
            throw failure(
                entry, "expected \(expected), got the string \(YAMLScalar.quotedForMessage(text)) (remove the quotes)")
        default:
            throw failure(entry, "expected \(expected), got \(entry.value.kindName)")
        }
    }
}
