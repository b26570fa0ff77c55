import BerthKit
import Foundation
import Testing

extension ConfigTests {
    /// Aliases are limited in what they expand to in bytes, not only in nodes; and a location is `FILE:LINE` for
    /// a file but `SOURCE, line N` for a source whose name a glued `:N` would run into.
    @Suite struct AliasLimits {
        /// `description: &s "<size bytes>"` and an `env` of `count` aliases of it: few nodes, much text.
        static func bomb(size: Int, count: Int) -> String {
            var text = "exec: [/bin/true]\ndescription: &s \"" + String(repeating: "x", count: size) + "\"\nenv: {"
            text += (0..<count).map { "V\($0): *s" }.joined(separator: ", ")
            return text + "}\n"
        }

        @Test func aMebibyteAliasedTenThousandTimesIsRefusedNamingTheLine() {
            // 10,000 nodes, far under the node limit; 10 GiB of text once walked (an environment, an export).
            let message = ConfigTests.configError {
                _ = try YAMLParser.parse(Self.bomb(size: 1 << 20, count: 10_000), file: "berth.yaml")
            }
            #expect(
                message
                    == "berth.yaml:3: the document grows past 4194304 bytes (4 MiB) of text once its aliases are "
                    + "expanded (each alias counts in full)")
        }

        @Test func aBombOfNestedListsIsCountedInBytesToo() {
            // Each level repeats the one before 4 times: 8 levels of 4 KiB scalars is 256 MiB, in 87,000 nodes.
            var text = "a0: &a0 [\"" + String(repeating: "y", count: 4096) + "\"]\n"
            for level in 1...8 {
                text += "a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 4).joined(separator: ", ")
                text += "]\n"
            }
            let message = ConfigTests.configError { _ = try YAMLParser.parse(text, file: "x.yaml") }
            #expect(message?.contains("grows past 4194304 bytes (4 MiB) of text") == true, "\(message ?? "")")
        }

        @Test func aliasesWithinTheLimitStillWork() throws {
            // 100 KiB used 30 times: 3 MiB, under the 4 MiB floor.
            let root = try #require(try YAMLParser.parse(Self.bomb(size: 100 << 10, count: 30), file: "berth.yaml"))
            #expect(root["env"]?["V29"]?.scalarText?.utf8.count == 100 << 10)
            // A large document may grow to twice its own size: 3 MiB written, 3 MiB more through aliases.
            var large = "pad: \"" + String(repeating: "p", count: 3 << 20) + "\"\n"
            large += Self.bomb(size: 100 << 10, count: 30).replacingOccurrences(of: "exec", with: "exec2")
            #expect(try YAMLParser.parse(large, file: "big.yaml")?["env"]?["V0"] != nil)
        }

        @Test func aLocationJoinsSourceAndLineReadably() {
            #expect(
                ConfigMark(file: "/etc/berth/berth.yaml", line: 2, column: 1).description == "/etc/berth/berth.yaml:2")
            #expect(ConfigMark(file: "stdin", line: 7, column: 1).description == "stdin:7")
            #expect(
                ConfigMark(file: "Define(\"x\") by :1.52", line: 2, column: 1).description
                    == "Define(\"x\") by :1.52, line 2")
            // Syntax errors from the parser join them the same way.
            let message = ConfigTests.configError {
                _ = try YAMLParser.parse("a: [1,\n", file: "Define(\"x\") by :1.52")
            }
            #expect(message?.hasPrefix("Define(\"x\") by :1.52, line ") == true, "\(message ?? "")")
            let unknown = ConfigTests.configError {
                let reader = try ConfigReader(
                    #require(try YAMLParser.parse("exec: x\nbogus: 1\n", file: "Define(\"x\") by :1.52")), path: "x")
                _ = reader.node("exec")
                try reader.finish()
            }
            #expect(unknown?.hasPrefix("Define(\"x\") by :1.52, line 2: x.bogus: unknown key \"bogus\"") == true)
        }
    }
}
