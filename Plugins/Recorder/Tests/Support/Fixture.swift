import BerthKit
import Glibc

@testable import RecorderPlugin

/// A raw audio file that an ALSA `type file` PCM plays into capture: deterministic pseudo-random bytes, so that
/// any lost, repeated or shifted sample shows.
struct Fixture {
    let path: String
    let bytes: [UInt8]
    let format: AudioFormat

    init(directory: String, format: AudioFormat, seconds: Double, name: String = "fixture.raw") throws {
        self.format = format
        path = directory + "/" + name
        let count = Int(seconds * Double(format.sampleRate)) * format.captureFrameBytes
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(format.sampleRate)
        bytes = (0..<count).map { _ in
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return UInt8(truncatingIfNeeded: state >> 24)
        }
        try writeFile(path, bytes)
    }

    var frames: Int64 { Int64(bytes.count / format.captureFrameBytes) }

    /// An inline ALSA configuration defining PCM `fixture` that reads this file. The slave must be inline:
    /// `snd_pcm_open_lconf` sees only this text, so the global `null` PCM is unknown there.
    var alsaConfig: String {
        """
        pcm.fixture {
            type file
            slave { pcm { type null } }
            file "/dev/null"
            infile "\(path)"
            format raw
        }
        """
    }

    var settings: CaptureSettings {
        CaptureSettings(
            device: "fixture", alsaConfig: alsaConfig, format: format, periodUSec: 100_000, bufferUSec: 500_000)
    }

    /// What a WAV file's data chunk must hold for frames `range` of the fixture (S24_LE packed to 3 bytes).
    func expectedData(_ range: Range<Int64>) -> [UInt8] {
        let frameBytes = format.captureFrameBytes
        let slice = Array(bytes[Int(range.lowerBound) * frameBytes..<Int(range.upperBound) * frameBytes])
        guard format.sample == .s24le else { return slice }
        var out: [UInt8] = []
        out.reserveCapacity(slice.count / 4 * 3)
        for i in stride(from: 0, to: slice.count, by: 4) { out += slice[i..<i + 3] }
        return out
    }
}

/// A WAV file's header and data.
func readWAV(_ path: String) throws -> (header: WAVHeader.Parsed, data: [UInt8]) {
    let file = try FileIO.readAll(path: path, limit: 1 << 30)
    guard let header = WAVHeader.parse(file) else { throw BerthError.failed("\(path) is not a WAV file") }
    let end = header.dataOffset + Int(header.dataBytes)
    guard end <= file.count else { throw BerthError.failed("\(path) is shorter than its header says") }
    return (header, Array(file[header.dataOffset..<end]))
}
