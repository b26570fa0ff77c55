/// RIFF/WAVE headers, built and read without I/O.
///
/// 16-bit mono or stereo is plain `WAVE_FORMAT_PCM`; more channels or wider samples use
/// `WAVE_FORMAT_EXTENSIBLE`. A file that may grow past 4 GiB reserves a 36-byte `JUNK` chunk after `WAVE` and
/// becomes RF64 (EBU Tech 3306) on finishing when it does: the `JUNK` turns into `ds64` holding the 64-bit sizes,
/// and the 32-bit size fields read 0xFFFFFFFF.
enum WAVHeader {
    static let ds64ChunkBytes = 36
    /// The largest data chunk a plain RIFF file can describe (its RIFF size field must stay below 2^32).
    static func maxPlainDataBytes(format: AudioFormat) -> UInt64 {
        UInt64(UInt32.max) - UInt64(size(format: format, reserveDS64: false)) - 1
    }

    static func isExtensible(_ format: AudioFormat) -> Bool { format.channels > 2 || format.sample.fileBytes > 2 }

    /// Bytes before the audio data.
    static func size(format: AudioFormat, reserveDS64: Bool) -> Int {
        12 + (reserveDS64 ? ds64ChunkBytes : 0) + 8 + (isExtensible(format) ? 40 : 16) + 8
    }

    /// The header for `dataBytes` bytes of audio (`dataBytes` excludes the pad byte an odd size needs).
    static func bytes(format: AudioFormat, dataBytes: UInt64, reserveDS64: Bool) -> [UInt8] {
        let headerSize = size(format: format, reserveDS64: reserveDS64)
        let padded = dataBytes + (dataBytes & 1)
        let riffSize = UInt64(headerSize) - 8 + padded
        let rf64 = reserveDS64 && riffSize > UInt64(UInt32.max)
        var out: [UInt8] = []
        out.reserveCapacity(headerSize)
        out.append(contentsOf: Array((rf64 ? "RF64" : "RIFF").utf8))
        out.le32(rf64 ? UInt32.max : UInt32(riffSize))
        out.append(contentsOf: Array("WAVE".utf8))
        if reserveDS64 {
            out.append(contentsOf: Array((rf64 ? "ds64" : "JUNK").utf8))
            out.le32(28)
            if rf64 {
                out.le64(riffSize)
                out.le64(dataBytes)
                out.le64(dataBytes / UInt64(format.fileFrameBytes))
                out.le32(0)  // no table of other large chunks
            } else {
                out.append(contentsOf: [UInt8](repeating: 0, count: 28))
            }
        }
        let blockAlign = format.fileFrameBytes
        let bits = format.sample.fileBytes * 8
        out.append(contentsOf: Array("fmt ".utf8))
        out.le32(isExtensible(format) ? 40 : 16)
        out.le16(isExtensible(format) ? 0xFFFE : 1)
        out.le16(UInt16(format.channels))
        out.le32(UInt32(format.sampleRate))
        out.le32(UInt32(format.sampleRate * blockAlign))
        out.le16(UInt16(blockAlign))
        out.le16(UInt16(bits))
        if isExtensible(format) {
            out.le16(22)
            out.le16(UInt16(format.sample.validBits))
            out.le32(format.channels == 1 ? 0x4 : format.channels == 2 ? 0x3 : 0)  // centre, left+right, unassigned
            // KSDATAFORMAT_SUBTYPE_PCM 00000001-0000-0010-8000-00aa00389b71
            out.append(contentsOf: [0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00])
            out.append(contentsOf: [0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71])
        }
        out.append(contentsOf: Array("data".utf8))
        out.le32(rf64 ? UInt32.max : UInt32(dataBytes))
        return out
    }

    /// What a header says.
    struct Parsed: Equatable {
        var isRF64: Bool
        var channels: Int
        var sampleRate: Int
        var bitsPerSample: Int
        var validBits: Int
        var formatTag: Int
        var hasReservedDS64: Bool
        var dataOffset: Int
        /// The data size the header claims (the ds64 value for RF64).
        var dataBytes: UInt64
    }

    /// Reads the chunks up to `data`; nil when `bytes` does not start with a WAV header.
    static func parse(_ bytes: [UInt8]) -> Parsed? {
        guard bytes.count >= 12 else { return nil }
        let magic = String(decoding: bytes[0..<4], as: UTF8.self)
        guard magic == "RIFF" || magic == "RF64", String(decoding: bytes[8..<12], as: UTF8.self) == "WAVE" else {
            return nil
        }
        var parsed = Parsed(
            isRF64: magic == "RF64", channels: 0, sampleRate: 0, bitsPerSample: 0, validBits: 0, formatTag: 0,
            hasReservedDS64: false, dataOffset: 0, dataBytes: 0)
        var ds64Data: UInt64?
        var offset = 12
        while offset + 8 <= bytes.count {
            let id = String(decoding: bytes[offset..<offset + 4], as: UTF8.self)
            let size = Int(bytes.le32(at: offset + 4))
            let body = offset + 8
            switch id {
            case "JUNK" where size == 28, "ds64":
                parsed.hasReservedDS64 = true
                if id == "ds64", body + 16 <= bytes.count { ds64Data = bytes.le64(at: body + 8) }
            case "fmt ":
                guard size >= 16, body + 16 <= bytes.count else { return nil }
                parsed.formatTag = Int(bytes.le16(at: body))
                parsed.channels = Int(bytes.le16(at: body + 2))
                parsed.sampleRate = Int(bytes.le32(at: body + 4))
                parsed.bitsPerSample = Int(bytes.le16(at: body + 14))
                parsed.validBits = parsed.bitsPerSample
                if parsed.formatTag == 0xFFFE, size >= 40, body + 20 <= bytes.count {
                    parsed.validBits = Int(bytes.le16(at: body + 18))
                }
            case "data":
                parsed.dataOffset = body
                let claimed = UInt64(bytes.le32(at: offset + 4))
                parsed.dataBytes = parsed.isRF64 && claimed == UInt64(UInt32.max) ? (ds64Data ?? claimed) : claimed
                return parsed.channels > 0 ? parsed : nil
            default:
                break
            }
            offset = body + size + (size & 1)
        }
        return nil
    }
}

extension [UInt8] {
    mutating func le16(_ v: UInt16) {
        append(UInt8(v & 0xff))
        append(UInt8(v >> 8))
    }
    mutating func le32(_ v: UInt32) { for i in 0..<4 { append(UInt8((v >> (8 * UInt32(i))) & 0xff)) } }
    mutating func le64(_ v: UInt64) { for i in 0..<8 { append(UInt8((v >> (8 * UInt64(i))) & 0xff)) } }

    func le16(at i: Int) -> UInt16 { UInt16(self[i]) | UInt16(self[i + 1]) << 8 }
    func le32(at i: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(self[i + $1]) << (8 * UInt32($1)) } }
    func le64(at i: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(self[i + $1]) << (8 * UInt64($1)) } }
}
