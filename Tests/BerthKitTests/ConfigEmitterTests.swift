import BerthKit
import Testing

extension ConfigTests {
    /// `yamlText()`: exact layout, quoting, and the round trip through the parser.
    @Suite struct Emitter {
        /// Strings that need care: YAML punctuation, look-alikes of other types, spaces, control characters.
        static let trickyStrings: [String] = [
            "", " lead", "trail ", "  ", "a: b", "a:b", "#x", "x #y", "x# y", "{}", "[a]", "a,b", "&a", "*a", "!tag",
            "|", ">", "'q'", "\"dq\"", "a'b", "%p", "@at", "`bt`", "yes", "no", "on", "Off", "y", "N", "null", "Null",
            "~", "true", "FALSE", "1", "-1", "+1", "0x1F", "0o17", "0b101", "1_000", "1.5", "-.5", "1e3", "6.02E+23",
            ".inf", "-.Inf", ".nan", "1.2.3", "2024-01-01", "12:30", "5s", "10M", "3rd", "line1\nline2", "trailing\n",
            "tab\there", "cr\r", "nul\0", "bell\u{7}", "del\u{7F}", "next\u{85}line", "ls\u{2028}", "\u{FEFF}bom",
            "é ünïcode ✓ 🚀", "back\\slash", "C:\\path", "-", "- x", "-m", "--flag", "?", "? x", "---", "...", "<<",
            "=", "http://example.com/a?b=c#d", "plain words", "x\"y", "\\n",
        ]

        static func roundTrip(_ node: ConfigNode, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let text = node.yamlText()
            let parsed = try YAMLParser.parse(text, file: "export.yaml")
            #expect(parsed?.strippingMarks() == node.strippingMarks(), "\(text)", sourceLocation: sourceLocation)
            // Emitting again gives the same text.
            #expect(parsed?.yamlText() == text, sourceLocation: sourceLocation)
        }

        @Test func layout() {
            let node = ConfigNode.map([
                ("log_level", .string("info")),
                ("autolaunch", .list([.string("laser"), .string("camera")])),
                (
                    "services",
                    .map([
                        (
                            "laser",
                            .map([
                                ("exec", .list([.string("/usr/bin/python3"), .string("-m"), .string("laser")])),
                                ("restart", .string("no")), ("stop_timeout", .string("5s")), ("port", .int(8080)),
                                ("debug", .bool(false)), ("env", .map([])), ("description", .string("Laser: 532 nm")),
                            ])
                        )
                    ])
                ),
                (
                    "pickup",
                    .list([
                        .map([("name", .string("drop")), ("path", .string("/srv/drop"))]),
                        .list([.string("a"), .string("b")]), .list([]),
                    ])
                ),
                ("empty", .null(.generated)),
                ("yes", .double(0.25)),
            ])
            #expect(
                node.yamlText() == """
                    log_level: info
                    autolaunch:
                      - laser
                      - camera
                    services:
                      laser:
                        exec:
                          - /usr/bin/python3
                          - "-m"
                          - laser
                        restart: "no"
                        stop_timeout: 5s
                        port: 8080
                        debug: false
                        env: {}
                        description: "Laser: 532 nm"
                    pickup:
                      - name: drop
                        path: /srv/drop
                      - - a
                        - b
                      - []
                    empty: null
                    "yes": 0.25

                    """)
        }

        @Test func topLevelValues() throws {
            #expect(ConfigNode.string("x").yamlText() == "x\n")
            #expect(ConfigNode.string("...").yamlText() == "\"...\"\n")
            #expect(ConfigNode.map([]).yamlText() == "{}\n")
            #expect(ConfigNode.list([]).yamlText() == "[]\n")
            #expect(ConfigNode.null(.generated).yamlText() == "null\n")
            #expect(ConfigNode.string("a\"b\\c\nd\te\u{1}").yamlText() == #""a\"b\\c\nd\te\x01""# + "\n")
            #expect(ConfigNode.list([.list([.list([.string("deep")])])]).yamlText() == "- - - deep\n")
            #expect(
                ConfigNode.list([.double(.infinity), .double(-.infinity), .double(.nan), .double(1e20)]).yamlText()
                    == "- .inf\n- -.inf\n- .nan\n- 1e+20\n")
            for node in [ConfigNode.string("x"), .map([]), .list([]), .null(.generated), .plain("5")] {
                try Self.roundTrip(node)
            }
        }

        @Test func trickyStringsRoundTrip() throws {
            for text in Self.trickyStrings {
                try Self.roundTrip(.string(text))
                try Self.roundTrip(.list([.string(text)]))
                try Self.roundTrip(.map([(text, .string(text))]))
            }
            try Self.roundTrip(.map(Self.trickyStrings.map { ($0, .list([.string($0), .map([($0, .string($0))])])) }))
        }

        @Test func unquotedValuesKeepTheirType() throws {
            let plain = ["yes", "off", "8080", "-1.5", "0x1F", "1e3", ".inf", "~", "null", "http://x", "a: b", "5s"]
            let node = ConfigNode.map(plain.enumerated().map { ("k\($0.offset)", .plain($0.element)) })
            try Self.roundTrip(node)
            let reader = try ConfigReader(#require(try YAMLParser.parse(node.yamlText(), file: "x")), path: "")
            #expect(try reader.bool("k0") == true)
            #expect(try reader.int("k2") == 8080)
            #expect(try reader.string("k7") == nil)  // "~" is null
            #expect(try reader.string("k10") == "a: b")
            // The same texts as strings stay strings.
            let strings = try ConfigReader(
                #require(try YAMLParser.parse(ConfigNode.map([("b", .string("yes"))]).yamlText(), file: "x")), path: "")
            #expect(ConfigTests.configError { _ = try strings.bool("b") }?.contains("got the string \"yes\"") == true)
        }

        @Test func parsedFileRoundTrip() throws {
            let original = try ConfigTests.parse(
                """
                # berth.yaml
                log_level: debug
                defaults: &defaults
                  restart: on-failure
                  stop_timeout: 10s
                services:
                  laser:
                    <<<: not a merge key, a plain key
                    exec: [/usr/bin/python3, -m, 'pyrolab.drivers.laser']
                    env: {PORT: 9090, DEBUG: yes, EMPTY: "", QUOTED: "8080"}
                    script: |
                      #!/bin/sh
                      echo "hi: there"
                    folded: >
                      one
                      two
                    policy: *defaults
                    url: http://host:8080/x?a=1#frag
                    nothing:
                autolaunch: [laser]
                """)
            try Self.roundTrip(original)
        }

        @Test func strippingMarksNormalizesMeaninglessQuoting() {
            #expect(ConfigNode.string("hello").strippingMarks() == ConfigNode.plain("hello").strippingMarks())
            #expect(ConfigNode.string("yes").strippingMarks() != ConfigNode.plain("yes").strippingMarks())
            #expect(ConfigNode.string("5").strippingMarks() != ConfigNode.plain("5").strippingMarks())
            #expect(ConfigNode.plain("null").strippingMarks() == .null(.generated))
            #expect(ConfigNode.string("null").strippingMarks() == .string("null"))
            let marked = ConfigNode.mapping(
                [ConfigEntry(key: "a", keyMark: ConfigTests.mark(1, 1), value: .null(ConfigTests.mark(1, 3)))],
                ConfigTests.mark(1, 1))
            #expect(marked.strippingMarks() == .map([("a", .null(.generated))]))
        }
    }
}
