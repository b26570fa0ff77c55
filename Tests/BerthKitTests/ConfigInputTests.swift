import BerthKit
import Glibc
import Testing

/// Temporary files for the config tests, in their own temp directory (never under `~`).
enum ConfigTestFile {
    /// Writes the bytes to a new file under /tmp and returns its path; the caller unlinks it.
    static func create(_ bytes: [UInt8]) -> String {
        var template = Array("/tmp/berth-config-test-XXXXXX.yaml".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemps($0.baseAddress!, 5) }
        precondition(fd >= 0, "mkstemps failed: errno \(errno)")
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        precondition(written == bytes.count)
        close(fd)
        return template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    static func create(_ text: String) -> String { create(Array(text.utf8)) }
}

extension ConfigTests {
    /// JSON through the same parser, and files.
    @Suite struct Input {
        @Test func jsonObjects() throws {
            let node = try YAMLParser.parseJSON(
                #"{"application_name": "web", "env": {"A": "1", "N": 2}, "on": true, "x": null, "l": [1.5, "\/a\u00e9"]}"#,
                source: "new")
            #expect(
                node.strippingMarks()
                    == .map([
                        ("application_name", .string("web")),
                        ("env", .map([("A", .string("1")), ("N", .plain("2"))])),
                        ("on", .plain("true")),
                        ("x", .null(.generated)),
                        ("l", .list([.plain("1.5"), .string("/aé")])),
                    ]))
            #expect(node.mark == ConfigMark(file: "new", line: 1, column: 1))
            let reader = try ConfigReader(node, path: "")
            #expect(try reader.bool("on") == true)
            #expect(try reader.stringMap("env")?.map { "\($0)=\($1)" } == ["A=1", "N=2"])
        }

        @Test func jsonLayout() throws {
            // Pretty-printed JSON with tabs and no space after colons.
            let node = try YAMLParser.parseJSON("{\n\t\"a\":1,\n\t\"b\":[\n\t\t\"c\"\n\t]\n}\n", source: "pretty.json")
            #expect(node.strippingMarks() == .map([("a", .plain("1")), ("b", .list([.string("c")]))]))
            #expect(node["b"]?.mark.line == 3)
            #expect(try YAMLParser.parseJSON("[]", source: "s").strippingMarks() == .list([]))
        }

        @Test func jsonErrors() {
            #expect(
                ConfigTests.configError { _ = try YAMLParser.parseJSON("", source: "stdin") }
                    == "stdin: the input is empty; expected a JSON value such as {}")
            #expect(
                ConfigTests.configError { _ = try YAMLParser.parseJSON(" \n\t ", source: "stdin") }
                    == "stdin: the input is empty; expected a JSON value such as {}")
            #expect(
                ConfigTests.configError { _ = try YAMLParser.parseJSON("# just a comment", source: "stdin") }
                    == "stdin: the input holds no JSON value; expected one such as {}")
            #expect(
                ConfigTests.configError { _ = try YAMLParser.parseJSON("{\"a\": 1,\n \"b\": }\n}", source: "stdin") }
                    == "stdin:2: b: a JSON value is missing")
            let message = ConfigTests.configError { _ = try YAMLParser.parseJSON("{\"a\": [1, 2}", source: "stdin") }
            #expect(message?.hasPrefix("stdin:1: did not find expected ',' or ']'") == true, "\(message ?? "")")
        }

        /// YAML that is not JSON is rejected, with the JSON way to write it.
        @Test func yamlIsNotJSON() {
            let cases: [(String, String)] = [
                ("{application_name: web}", "stdin:1: \"application_name\" is not a JSON key; keys need double quotes"),
                ("{\"a\": web}", "stdin:1: a: \"web\" is not a JSON value; strings need double quotes"),
                ("{\"a\": 'x'}", "stdin:1: a: \"x\" is not a JSON value; strings need double quotes"),
                ("{\"a\": [1, 01]}", "stdin:1: a[1]: \"01\" is not a JSON value; strings need double quotes"),
                ("{\"a\": yes}", "stdin:1: a: \"yes\" is not a JSON value; strings need double quotes"),
                ("a: 1", "stdin:1: YAML block syntax is not JSON; write [...] for a list and {...} for an object"),
                ("[&x 1, *x]", "stdin:1: [0]: anchors and tags are not JSON"),
            ]
            for (input, expected) in cases {
                #expect(ConfigTests.configError { _ = try YAMLParser.parseJSON(input, source: "stdin") } == expected)
            }
            let numbers = ["0", "-1", "1.5", "-0.25e-3", "2E+10"]
            for number in numbers {
                #expect(
                    (try? YAMLParser.parseJSON(number, source: "n"))
                        == .scalar(number, ConfigMark(file: "n", line: 1, column: 1), quoted: false))
            }
        }

        @Test func fileIsReadAndNamed() throws {
            let path = ConfigTestFile.create("log_level: debug\nservices:\n  laser:\n    exec: [/bin/true]\n")
            defer { unlink(path) }
            let root = try #require(try YAMLParser.parseFile(atPath: path))
            #expect(root["services"]?["laser"]?["exec"]?.mark == ConfigMark(file: path, line: 4, column: 11))
            let reader = try ConfigReader(root, path: "")
            #expect(try reader.string("log_level") == "debug")
        }

        @Test func unreadableFileNamesPathAndReason() {
            #expect(
                ConfigTests.configError { _ = try YAMLParser.parseFile(atPath: "/nonexistent/berth.yaml") }
                    == "/nonexistent/berth.yaml: cannot read the file: No such file or directory")
            #expect(
                ConfigTests.configError { _ = try YAMLParser.parseFile(atPath: "/tmp") }
                    == "/tmp: cannot read the file: it is a folder, not a regular file")
        }

        @Test func emptyFileIsNil() throws {
            let path = ConfigTestFile.create("# all defaults\n")
            defer { unlink(path) }
            #expect(try YAMLParser.parseFile(atPath: path) == nil)
        }
    }
}
