import BerthKit
import Testing

extension ConfigTests {
    /// The strict reader: typed accessors, key paths in messages, unknown keys.
    @Suite struct Reader {
        /// A reader over `yaml` as if it were the section `path` of berth.yaml (its lines count from 1).
        static func reader(_ yaml: String, path: String = "services.laser") throws -> ConfigReader {
            try ConfigReader(ConfigTests.parse(yaml), path: path)
        }

        static func error(_ yaml: String, _ read: (ConfigReader) throws -> Void) -> String? {
            ConfigTests.configError { try read(reader(yaml)) }
        }

        @Test func strings() throws {
            let r = try Self.reader("a: text\nb: 8080\nc: \"\"\nd: yes\ne:\n")
            #expect(try r.string("a") == "text")
            #expect(try r.string("b") == "8080")
            #expect(try r.string("c") == "")
            #expect(try r.string("d") == "yes")
            #expect(try r.string("e") == nil)
            #expect(try r.string("missing") == nil)
            #expect(try r.nonEmptyString("a") == "text")
            #expect(
                Self.error("a: x\nlog_level: [debug]\n") { _ = try $0.string("log_level") }
                    == "berth.yaml:2: services.laser.log_level: expected a string, got a list")
            #expect(
                Self.error("description:\n  x: 1\n") { _ = try $0.string("description") }
                    == "berth.yaml:2: services.laser.description: expected a string, got a mapping")
            #expect(
                Self.error("name: ''\n") { _ = try $0.nonEmptyString("name") }
                    == "berth.yaml:1: services.laser.name: expected a non-empty string, got \"\"")
            #expect(
                Self.error("name: '   '\n") { _ = try $0.nonEmptyString("name") }
                    == "berth.yaml:1: services.laser.name: expected a non-empty string, got \"   \"")
        }

        @Test func booleans() throws {
            let r = try Self.reader("a: true\nb: no\nc: On\nd: FALSE\ne: yes\n")
            #expect(
                try [r.bool("a"), r.bool("b"), r.bool("c"), r.bool("d"), r.bool("e")] == [
                    true, false, true, false, true,
                ])
            #expect(
                Self.error("x: 1\nenabled: maybe\n") { _ = try $0.bool("enabled") }
                    == "berth.yaml:2: services.laser.enabled: \"maybe\" is not a boolean (use true or false)")
            #expect(
                Self.error("enabled: \"true\"\n") { _ = try $0.bool("enabled") }
                    == "berth.yaml:1: services.laser.enabled: expected a boolean (true or false), got the string \"true\" (remove the quotes)"
            )
            #expect(
                Self.error("enabled: [true]\n") { _ = try $0.bool("enabled") }
                    == "berth.yaml:1: services.laser.enabled: expected a boolean (true or false), got a list")
        }

        @Test func integers() throws {
            let r = try Self.reader("a: 8080\nb: -3\nc: 1_000\nd: 0x1F\ne: 0o17\n")
            #expect(try r.int("a", in: 1...65535) == 8080)
            #expect(try r.int("b") == -3)
            #expect(try r.int("c") == 1000)
            #expect(try r.int("d") == 31)
            #expect(try r.int("e") == 15)
            #expect(try r.uint64("a") == 8080)
            #expect(
                Self.error("port: 70000\n") { _ = try $0.int("port", in: 1...65535) }
                    == "berth.yaml:1: services.laser.port: 70000 is not between 1 and 65535")
            #expect(
                Self.error("port: 1.5\n") { _ = try $0.int("port") }
                    == "berth.yaml:1: services.laser.port: \"1.5\" is not an integer")
            #expect(
                Self.error("port: '80'\n") { _ = try $0.int("port") }
                    == "berth.yaml:1: services.laser.port: expected an integer, got the string \"80\" (remove the quotes)"
            )
            #expect(
                Self.error("port: 99999999999999999999\n") { _ = try $0.int("port") }
                    == "berth.yaml:1: services.laser.port: \"99999999999999999999\" is out of range")
            #expect(
                Self.error("n: -1\n") { _ = try $0.uint64("n") }
                    == "berth.yaml:1: services.laser.n: \"-1\" is negative; expected zero or more")
            #expect(try Self.reader("n: 18446744073709551615\n").uint64("n") == .max)
            #expect(
                Self.error("n: 5\n") { _ = try $0.uint64("n", in: 10...20) }
                    == "berth.yaml:1: services.laser.n: 5 is not between 10 and 20")
        }

        @Test func doubles() throws {
            let r = try Self.reader("a: 0.5\nb: -2\nc: 1e3\nd: .25\n")
            #expect(try r.double("a", in: 0...1) == 0.5)
            #expect(try r.double("b") == -2)
            #expect(try r.double("c") == 1000)
            #expect(try r.double("d") == 0.25)
            #expect(
                Self.error("lat: 91.5\n") { _ = try $0.double("lat", in: -90...90) }
                    == "berth.yaml:1: services.laser.lat: 91.5 is not between -90.0 and 90.0")
            #expect(
                Self.error("lat: north\n") { _ = try $0.double("lat") }
                    == "berth.yaml:1: services.laser.lat: \"north\" is not a number")
            #expect(
                Self.error("lat: .inf\n") { _ = try $0.double("lat") }
                    == "berth.yaml:1: services.laser.lat: \".inf\" is not a number")
        }

        @Test func choices() throws {
            #expect(try Self.reader("restart: no\n").oneOf("restart", ["no", "on-failure", "always"]) == "no")
            #expect(
                Self.error("exec: [a]\ndescription: d\n\n\n\n\nrestart: sometimes\n") {
                    _ = try $0.oneOf("restart", ["no", "on-failure", "always"])
                } == "berth.yaml:7: services.laser.restart: \"sometimes\" is not one of no, on-failure, always")
        }

        @Test func lists() throws {
            #expect(
                try Self.reader("exec: [/usr/bin/python3, -m, 5]\n").stringList("exec") == [
                    "/usr/bin/python3", "-m", "5",
                ])
            #expect(try Self.reader("exec: []\n").stringList("exec") == [])
            #expect(
                Self.error("exec: /bin/true\n") { _ = try $0.stringList("exec") }
                    == "berth.yaml:1: services.laser.exec: expected a list of strings, got \"/bin/true\"")
            #expect(
                Self.error("exec:\n  - a\n  - {b: c}\n") { _ = try $0.stringList("exec") }
                    == "berth.yaml:3: services.laser.exec[1]: expected a string, got a mapping")
            #expect(
                Self.error("exec:\n  - a\n  -\n") { _ = try $0.stringList("exec") }
                    == "berth.yaml:3: services.laser.exec[1]: expected a string, got null")
        }

        @Test func maps() throws {
            let env = try Self.reader("env:\n  PORT: 8080\n  DEBUG: yes\n  NAME: 'x y'\n").stringMap("env")
            #expect(env?.map(\.0) == ["PORT", "DEBUG", "NAME"])
            #expect(env?.map(\.1) == ["8080", "yes", "x y"])
            #expect(
                Self.error("env:\n  A: 1\n  B: [x]\n") { _ = try $0.stringMap("env") }
                    == "berth.yaml:3: services.laser.env.B: expected a string, got a list")
            #expect(
                Self.error("env: [A=1]\n") { _ = try $0.stringMap("env") }
                    == "berth.yaml:1: services.laser.env: expected a mapping of strings, got a list")
        }

        @Test func nestedReadersExtendThePath() throws {
            let root = try ConfigReader(
                ConfigTests.parse("services:\n  laser:\n    restart: never\n  empty:\n"), path: "")
            let services = try #require(try root.reader("services"))
            #expect(services.path == "services")
            #expect(services.keys == ["laser", "empty"])
            let laser = try #require(try services.reader("laser"))
            #expect(
                ConfigTests.configError { _ = try laser.oneOf("restart", ["no", "always"]) }
                    == "berth.yaml:3: services.laser.restart: \"never\" is not one of no, always")
            let empty = try #require(try services.reader("empty"))
            #expect(empty.keys.isEmpty)
            try empty.finish()
            #expect(try root.reader("absent") == nil)
            #expect(
                ConfigTests.configError { _ = try ConfigReader(ConfigTests.parse("- a\n"), path: "") }
                    == "berth.yaml:1: expected a mapping, got a list")
            #expect(
                ConfigTests.configError {
                    _ = try ConfigReader(ConfigTests.parse("x: 1\nservices: laser\n"), path: "").reader("services")
                }
                    == "berth.yaml:2: services: expected a mapping, got \"laser\"")
        }

        @Test func unknownKeysListTheKnownOnes() throws {
            let r = try Self.reader("exec: [a]\nrestrat: always\nenv: {}\n")
            _ = try r.stringList("exec")
            _ = try r.oneOf("restart", ["no", "always"])
            _ = r.has("env")
            _ = try r.duration("stop_timeout")
            #expect(
                ConfigTests.configError { try r.finish() }
                    == "berth.yaml:2: services.laser.restrat: unknown key \"restrat\" (known keys: env, exec, restart, stop_timeout)"
            )
            #expect(
                Self.error("x: 1\n") { try $0.finish() }
                    == "berth.yaml:1: services.laser.x: unknown key \"x\" (no keys are allowed here)")
        }

        @Test func requiredKeys() throws {
            let r = try Self.reader("\nexec: [a, b]\nport:\n")
            #expect(try r.required("exec", r.stringList) == ["a", "b"])
            #expect(
                ConfigTests.configError { _ = try r.required("port") { try r.int($0, in: 1...65535) } }
                    == "berth.yaml:3: services.laser.port: a value is required")
            #expect(
                ConfigTests.configError { _ = try r.required("name", r.nonEmptyString) }
                    == "berth.yaml:2: services.laser: missing required key \"name\"")
            try r.finish()
        }

        @Test func rawAccessMarksKeysRead() throws {
            let r = try Self.reader("spec: {a: 1}\nempty:\nlasers:\n  one: {}\n  two: {}\n")
            #expect(r.node("spec")?.kindName == "a mapping")
            #expect(r.node("empty") == .null(ConfigTests.mark(2, 7)))
            #expect(r.has("empty") == false)
            #expect(r.has("spec") == true)
            let lasers = try #require(try r.reader("lasers"))
            #expect(lasers.entries().map(\.key) == ["one", "two"])
            try lasers.finish()
            try r.finish()
            #expect(
                r.error("spec", "\"a\" conflicts with \"b\"").message
                    == "berth.yaml:1: services.laser.spec: \"a\" conflicts with \"b\"")
        }
    }
}
