import BerthKit
import Glibc
import Testing

/// The configuration layer: parser, strict reader, emitter and merge. Nested suites live in the other Config*
/// files, so `swift test --filter ConfigTests` runs them all.
@Suite struct ConfigTests {
    /// The message of the `.invalidConfig` error `body` throws; records an issue when it throws nothing or else.
    static func configError(
        sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
    ) -> String? {
        do {
            try body()
            Issue.record("expected an InvalidConfig error, got none", sourceLocation: sourceLocation)
        } catch let error as BerthError {
            #expect(error.code == .invalidConfig, sourceLocation: sourceLocation)
            return error.message
        } catch {
            Issue.record("expected a BerthError, got \(error)", sourceLocation: sourceLocation)
        }
        return nil
    }

    static func parse(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> ConfigNode {
        try #require(try YAMLParser.parse(text, file: "berth.yaml"), sourceLocation: sourceLocation)
    }

    static func mark(_ line: Int, _ column: Int) -> ConfigMark {
        ConfigMark(file: "berth.yaml", line: line, column: column)
    }

    @Test func buildsTreeWithMarksAndQuoting() throws {
        let root = try Self.parse(
            """
            # a comment
            name: laser
            port: 8080
            quoted: "8080"
            single: 'yes'
            block: |
              two
              lines
            empty:
            tilde: ~
            list:
              - a
              - {b: 1}
            """)
        guard case .mapping(let entries, let mark) = root else {
            Issue.record("root is \(root.kindName)")
            return
        }
        #expect(mark == Self.mark(2, 1))
        #expect(entries.map(\.key) == ["name", "port", "quoted", "single", "block", "empty", "tilde", "list"])
        #expect(entries[0].keyMark == Self.mark(2, 1))
        #expect(entries[0].value == .scalar("laser", Self.mark(2, 7), quoted: false))
        #expect(entries[1].value == .scalar("8080", Self.mark(3, 7), quoted: false))
        #expect(entries[2].value == .scalar("8080", Self.mark(4, 9), quoted: true))
        #expect(entries[3].value == .scalar("yes", Self.mark(5, 9), quoted: true))
        #expect(entries[4].value.scalarText == "two\nlines\n")
        #expect(entries[5].value == .null(Self.mark(9, 7)))
        #expect(entries[6].value == .null(Self.mark(10, 8)))
        #expect(entries[7].value.kindName == "a list")
        #expect(root["list"]?.strippingMarks() == .list([.string("a"), .map([("b", .plain("1"))])]))
        #expect(Self.mark(7, 3).description == "berth.yaml:7")
    }

    @Test func emptyDocumentsAreNil() throws {
        #expect(try YAMLParser.parse("", file: "x.yaml") == nil)
        #expect(try YAMLParser.parse("# nothing here\n\n", file: "x.yaml") == nil)
        #expect(try YAMLParser.parse("---\n", file: "x.yaml") == nil)
        #expect(try YAMLParser.parse("null\n", file: "x.yaml") == .null(ConfigMark(file: "x.yaml", line: 1, column: 1)))
    }

    @Test func syntaxErrorNamesFileAndLine() {
        let message = Self.configError {
            _ = try YAMLParser.parse("a: 1\nb: [1, 2\nc: 3\n", file: "conf.d/10-lab.yaml")
        }
        #expect(
            message?.hasPrefix("conf.d/10-lab.yaml:3: did not find expected ',' or ']'") == true, "\(message ?? "")")
        #expect(
            Self.configError { _ = try Self.parse("a: b: c\n") }
                == "berth.yaml:1: mapping values are not allowed in this context")
        #expect(Self.configError { _ = try Self.parse("a: 1\n\tb: 2\n") }?.hasPrefix("berth.yaml:2: ") == true)
    }

    @Test func invalidUTF8NamesTheLine() {
        let bytes = Array("a: 1\nb: ".utf8) + [0xFF, 0x0A]
        let path = ConfigTestFile.create(bytes)
        defer { unlink(path) }
        #expect(Self.configError { _ = try YAMLParser.parseFile(atPath: path) }?.hasPrefix("\(path):2: ") == true)
    }

    @Test func duplicateKeysNameBothLines() {
        #expect(
            Self.configError { _ = try Self.parse("services:\n  laser:\n    exec: [a]\n    exec: [b]\n") }
                == "berth.yaml:4: services.laser.exec: duplicate key \"exec\" (first defined at line 3)")
        #expect(
            Self.configError { _ = try YAMLParser.parseJSON(#"{"a": 1, "a": 2}"#, source: "input") }
                == "input:1: a: duplicate key \"a\" (first defined at line 1)")
    }

    @Test func keysMustBeStrings() throws {
        #expect(
            Self.configError { _ = try Self.parse("a:\n  ? [x, y]\n  : 1\n") }
                == "berth.yaml:2: a: a mapping key must be a string, got a list")
        #expect(
            Self.configError { _ = try Self.parse("{x: 1}: 2\n") }
                == "berth.yaml:1: a mapping key must be a string, got a mapping")
        #expect(
            Self.configError { _ = try Self.parse("a: 1\n~: 2\n") }
                == "berth.yaml:2: a mapping key must be a string, got null (quote it if you mean the string \"~\")")
        #expect(try Self.parse("\"~\": 1\n8080: 2\n")["8080"]?.scalarText == "2")
    }

    @Test func mergeKeysAreRejected() {
        #expect(
            Self.configError { _ = try Self.parse("base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n") }
                == "berth.yaml:3: other: merge keys (<<) are not supported; write the keys out")
        // A quoted "<<" is an ordinary key.
        #expect((try? Self.parse("\"<<\": 1\n"))?["<<"]?.scalarText == "1")
    }

    @Test func aliasesCopyTheAnchoredNode() throws {
        let root = try Self.parse(
            "defaults: &d\n  restart: always\n  env: {A: '1'}\nlaser: *d\nname: &n web\nsame: *n\n")
        #expect(root["laser"]?.strippingMarks() == root["defaults"]?.strippingMarks())
        #expect(root["laser"]?.mark == Self.mark(4, 8))  // the alias's own position
        #expect(root["laser"]?["restart"]?.mark == Self.mark(2, 12))  // inner nodes keep the anchor's
        #expect(root["same"] == .scalar("web", Self.mark(6, 7), quoted: false))
    }

    @Test func badAliasesAreErrors() {
        #expect(
            Self.configError { _ = try Self.parse("a: 1\nb: *nope\n") }
                == "berth.yaml:2: b: unknown alias *nope (no anchor &nope before it)")
        #expect(
            Self.configError { _ = try Self.parse("a: &loop\n  - 1\n  - *loop\n") }
                == "berth.yaml:3: a[1]: alias *loop refers to a node that contains it")
        var bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...7 {
            bomb +=
                "a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ")
                + "]\n"
        }
        #expect(Self.configError { _ = try Self.parse(bomb) }?.contains("once its aliases are expanded") == true)
    }

    @Test func onlyOneDocument() {
        #expect(
            Self.configError { _ = try Self.parse("a: 1\n---\nb: 2\n") }
                == "berth.yaml:2: a second YAML document; a config file holds exactly one")
    }

    @Test func tags() throws {
        let root = try Self.parse("a: !!str 5\nb: !!int \"7\"\nc: ! yes\nd: !!null ''\ne: !!map {x: 1}\n")
        #expect(root["a"] == .scalar("5", Self.mark(1, 4), quoted: true))
        #expect(root["b"] == .scalar("7", Self.mark(2, 4), quoted: false))
        #expect(root["c"]?.strippingMarks() == .string("yes"))
        #expect(root["d"] == .null(Self.mark(4, 4)))
        #expect(
            Self.configError { _ = try Self.parse("x:\n  y: !!int abc\n") }
                == "berth.yaml:2: x.y: \"abc\" is not an integer (tagged !!int)")
        #expect(
            Self.configError { _ = try Self.parse("x: !python/object foo\n") }
                == "berth.yaml:1: x: unsupported tag !python/object")
        #expect(
            Self.configError { _ = try Self.parse("x: !!seq {a: 1}\n") }
                == "berth.yaml:1: x: unsupported tag !!seq on a mapping")
    }

    @Test func nestingIsLimited() {
        let deep = String(repeating: "[", count: 300) + String(repeating: "]", count: 300)
        #expect(Self.configError { _ = try Self.parse(deep) }?.hasSuffix("nesting is deeper than 256 levels") == true)
    }
}
