import BerthKit
import Testing

extension ConfigTests {
    /// Durations and byte sizes.
    @Suite struct Units {
        static func duration(_ text: String) throws -> Duration? {
            try ConfigReader(ConfigTests.parse("timeout: \(text)\n"), path: "recorder").duration("timeout")
        }

        static func size(_ text: String) throws -> UInt64? {
            try ConfigReader(ConfigTests.parse("max: \(text)\n"), path: "logs").byteSize("max")
        }

        @Test(arguments: [
            ("250ms", Duration.milliseconds(250)),
            ("5s", .seconds(5)),
            ("2m", .seconds(120)),
            ("1h", .seconds(3600)),
            ("1d", .seconds(86400)),
            ("1.5s", .milliseconds(1500)),
            ("0.1s", .milliseconds(100)),
            ("1h30m", .seconds(5400)),
            ("5", .seconds(5)),
            ("2.5", .milliseconds(2500)),
            ("0", .zero),
            ("'10s'", .seconds(10)),
        ])
        func goodDurations(text: String, expected: Duration) throws {
            #expect(try Self.duration(text) == expected)
        }

        static let durationHint = " (write a number and a unit: 250ms, 5s, 2m, 1h or 1d; a bare number is seconds)"
        static let sizeHint = " (write bytes, or a number and a unit: 512K, 10M, 2G)"

        @Test func badDurations() throws {
            let cases: [(String, String)] = [
                ("-5s", "\"-5s\" is negative; a duration must be zero or more"),
                ("-1", "\"-1\" is negative; a duration must be zero or more"),
                ("5x", "\"5x\" is not a duration" + Self.durationHint),
                ("s", "\"s\" is not a duration" + Self.durationHint),
                ("5 s", "\"5 s\" is not a duration" + Self.durationHint),
                ("1h30", "\"1h30\" is not a duration" + Self.durationHint),
                ("--5s", "\"--5s\" is not a duration" + Self.durationHint),
                ("99999999999d", "\"99999999999d\" is too long a duration"),
                ("[5s]", "expected a duration, got a list"),
            ]
            for (text, problem) in cases {
                #expect(
                    ConfigTests.configError { _ = try Self.duration(text) } == "berth.yaml:1: recorder.timeout: "
                        + problem)
            }
            #expect(try Self.duration("") == nil)
        }

        @Test(arguments: [
            ("1048576", UInt64(1_048_576)),
            ("512B", 512),
            ("10K", 10240),
            ("10k", 10240),
            ("10KiB", 10240),
            ("10KB", 10240),
            ("10M", 10_485_760),
            ("10MB", 10_485_760),
            ("2G", 2_147_483_648),
            ("1T", 1_099_511_627_776),
            ("1.5K", 1536),
            ("0.5M", 524_288),
            ("'64M'", 67_108_864),
            ("18446744073709551615", .max),
        ])
        func goodSizes(text: String, expected: UInt64) throws {
            #expect(try Self.size(text) == expected)
        }

        @Test func badSizes() {
            let cases: [(String, String)] = [
                ("-1", "\"-1\" is negative; a size must be zero or more"),
                ("-10M", "\"-10M\" is negative; a size must be zero or more"),
                ("10X", "\"10X\" is not a size" + Self.sizeHint),
                ("M", "\"M\" is not a size" + Self.sizeHint),
                ("1e3", "\"1e3\" is not a size" + Self.sizeHint),
                ("18446744073709551616", "\"18446744073709551616\" is too large a size"),
                ("99999999T", "\"99999999T\" is too large a size"),
                ("{a: 1}", "expected a size, got a mapping"),
            ]
            for (text, problem) in cases {
                #expect(ConfigTests.configError { _ = try Self.size(text) } == "berth.yaml:1: logs.max: " + problem)
            }
        }
    }
}
