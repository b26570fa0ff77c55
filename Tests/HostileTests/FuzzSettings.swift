import Foundation

/// What the hostile-client fuzzer does, from the environment (every size can be turned down to reproduce or to
/// run a quick pass; the defaults are the sizes issue 13 asks for):
///
/// | variable | default | what |
/// | --- | --- | --- |
/// | `BERTH_FUZZ_SEED` | 13 | seeds every random byte and key: a failure reproduces with the same seed |
/// | `BERTH_FUZZ_STRING_BYTES` | 1048576 | the huge string, the huge `ay` and the huge dictionary key |
/// | `BERTH_FUZZ_ARRAY_COUNT` | 100000 | elements of the huge arrays (`as`, `au`, ...) |
/// | `BERTH_FUZZ_DICT_COUNT` | 10000 | entries of the huge `a{sv}` |
/// | `BERTH_FUZZ_CALL_TIMEOUT` | 10 | seconds a call may take before it counts as a hang |
/// | `BERTH_FUZZ_STALL_LIMIT` | 5 | seconds another client's Ping may wait while a call runs (0: no prober; lower it on a quiet machine) |
/// | `BERTH_FUZZ_RSS_LIMIT_MIB` | 512 | berthd is killed (and the call named) when its RSS passes this |
/// | `BERTH_FUZZ_MAX_ERROR_BYTES` | 2048 | an error message longer than this quotes too much of a value |
/// | `BERTH_FUZZ_HOSTILE_FILES` | 1 | 0 leaves out the hostile paths (FIFO, /proc file, 1 TiB sparse file, /dev/zero) |
/// | `BERTH_FUZZ_NONCHARACTERS` | 1 | 0 leaves out the U+10FFFF calls (sent with gdbus: sd-bus refuses to send them) |
/// | `BERTH_FUZZ_ONLY` | (all) | only members whose `Interface.Member` contains this text (to reproduce one) |
/// | `BERTH_FUZZ_VERBOSE` | 0 | 1 prints every call and its outcome |
struct FuzzSettings: Sendable {
    var seed: UInt64 = 13
    var stringBytes = 1 << 20
    var arrayCount = 100_000
    var dictCount = 10_000
    var callTimeout: Duration = .seconds(10)
    var stallLimit: Duration = .seconds(5)
    var rssLimitBytes = 512 << 20
    var maxErrorBytes = 2048
    var hostileFiles = true
    var noncharacters = true
    var only: String?
    var verbose = false

    static func fromEnvironment() -> FuzzSettings {
        let env = ProcessInfo.processInfo.environment
        var s = FuzzSettings()
        func int(_ key: String) -> Int? { env[key].flatMap { Int($0) } }
        if let v = env["BERTH_FUZZ_SEED"].flatMap({ UInt64($0) }) { s.seed = v }
        if let v = int("BERTH_FUZZ_STRING_BYTES") { s.stringBytes = max(1, v) }
        if let v = int("BERTH_FUZZ_ARRAY_COUNT") { s.arrayCount = max(1, v) }
        if let v = int("BERTH_FUZZ_DICT_COUNT") { s.dictCount = max(1, v) }
        if let v = env["BERTH_FUZZ_CALL_TIMEOUT"].flatMap({ Double($0) }) {
            s.callTimeout = .milliseconds(Int(v * 1000))
        }
        if let v = env["BERTH_FUZZ_STALL_LIMIT"].flatMap({ Double($0) }) { s.stallLimit = .milliseconds(Int(v * 1000)) }
        if let v = int("BERTH_FUZZ_RSS_LIMIT_MIB") { s.rssLimitBytes = v << 20 }
        if let v = int("BERTH_FUZZ_MAX_ERROR_BYTES") { s.maxErrorBytes = v }
        if env["BERTH_FUZZ_HOSTILE_FILES"] == "0" { s.hostileFiles = false }
        if env["BERTH_FUZZ_NONCHARACTERS"] == "0" { s.noncharacters = false }
        if let v = env["BERTH_FUZZ_ONLY"], !v.isEmpty { s.only = v }
        if env["BERTH_FUZZ_VERBOSE"] == "1" { s.verbose = true }
        return s
    }

    var summary: String {
        "seed \(seed), stall limit \(stallLimit), strings \(stringBytes) B, arrays \(arrayCount), "
            + "dicts \(dictCount), timeout \(callTimeout), RSS limit \(rssLimitBytes >> 20) MiB, hostile files \(hostileFiles), U+10FFFF \(noncharacters)"
    }
}

/// SplitMix64: small, seeded, the same sequence on every machine.
struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var i = 0
        while i < count {
            var word = next()
            for _ in 0..<8 where i < count {
                out[i] = UInt8(truncatingIfNeeded: word)
                word >>= 8
                i += 1
            }
        }
        return out
    }

    /// Lower-case letters and digits.
    mutating func word(_ count: Int) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789".utf8)
        return String(decoding: (0..<count).map { _ in alphabet[Int(next() % UInt64(alphabet.count))] }, as: UTF8.self)
    }
}
