/// The ALSA sample formats the recorder captures, and how each lands in a WAV file. 24-bit samples are stored
/// packed (3 bytes) in the WAV whichever way ALSA delivers them; S24_LE's 32-bit container is unpacked.
enum SampleFormat: String, Sendable, CaseIterable {
    case s16le = "S16_LE"
    /// 24 bits in the low three bytes of a 32-bit little-endian word.
    case s24le = "S24_LE"
    /// 24 bits packed in three bytes.
    case s24le3 = "S24_3LE"
    case s32le = "S32_LE"

    /// Parses an ALSA format name, case-insensitively.
    init?(name: String) {
        guard let format = Self.allCases.first(where: { $0.rawValue.lowercased() == name.lowercased() }) else {
            return nil
        }
        self = format
    }

    /// Bytes per sample as ALSA delivers it.
    var captureBytes: Int {
        switch self {
        case .s16le: 2
        case .s24le, .s32le: 4
        case .s24le3: 3
        }
    }

    /// Bytes per sample in the WAV file.
    var fileBytes: Int {
        switch self {
        case .s16le: 2
        case .s24le, .s24le3: 3
        case .s32le: 4
        }
    }

    var validBits: Int {
        switch self {
        case .s16le: 16
        case .s24le, .s24le3: 24
        case .s32le: 32
        }
    }

    static var names: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

/// The shape of the audio: rate, channels, format.
struct AudioFormat: Sendable, Equatable {
    var sampleRate: Int
    var channels: Int
    var sample: SampleFormat

    var captureFrameBytes: Int { channels * sample.captureBytes }
    var fileFrameBytes: Int { channels * sample.fileBytes }

    /// Frames in `usec` microseconds, rounded to the nearest frame.
    func frames(usec: Int64) -> Int64 { (usec * Int64(sampleRate) + 500_000) / 1_000_000 }

    /// Microseconds taken by `frames` frames, rounded down.
    func usec(frames: Int64) -> Int64 { frames * 1_000_000 / Int64(sampleRate) }
}
