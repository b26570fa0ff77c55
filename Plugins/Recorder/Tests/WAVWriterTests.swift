import BerthKit
import Glibc
import Testing

@testable import RecorderPlugin

@Suite struct WAVWriterTests {
    let mono16 = AudioFormat(sampleRate: 48000, channels: 1, sample: .s16le)

    @Test func plainPCMHeaderIsTheClassic44Bytes() {
        let header = WAVHeader.bytes(format: mono16, dataBytes: 96000, reserveDS64: false)
        #expect(header.count == 44)
        #expect(Array(header[0..<4]) == Array("RIFF".utf8))
        #expect(header.le32(at: 4) == 36 + 96000)
        #expect(header.le16(at: 20) == 1)  // WAVE_FORMAT_PCM
        #expect(header.le32(at: 24) == 48000)
        #expect(header.le32(at: 28) == 96000)  // byte rate
        #expect(header.le16(at: 32) == 2)  // block align
        #expect(header.le16(at: 34) == 16)
        #expect(header.le32(at: 40) == 96000)
        let parsed = WAVHeader.parse(header)
        #expect(parsed?.dataOffset == 44)
        #expect(parsed?.dataBytes == 96000)
        #expect(parsed?.isRF64 == false)
    }

    @Test(arguments: [
        (AudioFormat(sampleRate: 96000, channels: 2, sample: .s24le), 24, 24),
        (AudioFormat(sampleRate: 192000, channels: 1, sample: .s32le), 32, 32),
        (AudioFormat(sampleRate: 48000, channels: 4, sample: .s16le), 16, 16),
    ])
    func extensibleHeaderForWideSamplesAndManyChannels(format: AudioFormat, bits: Int, valid: Int) throws {
        let header = WAVHeader.bytes(format: format, dataBytes: 1200, reserveDS64: false)
        #expect(header.count == 68)
        let parsed = try #require(WAVHeader.parse(header))
        #expect(parsed.formatTag == 0xFFFE)
        #expect(parsed.bitsPerSample == bits)
        #expect(parsed.validBits == valid)
        #expect(parsed.channels == format.channels)
        #expect(parsed.dataOffset == 68)
    }

    @Test func writesFinishesAndReadsBack() throws {
        let dir = TempDirectory("wav")
        let path = dir.path + "/a.wav.partial"
        let writer = try WAVWriter(path: path, format: mono16, expectedDataBytes: 2000)
        let samples: [Int16] = (0..<1000).map { Int16(truncatingIfNeeded: $0 * 37) }
        try samples.withUnsafeBytes { try writer.append(captured: $0) }
        try writer.finish()
        let file = try FileIO.readAll(path: path, limit: 1 << 20)
        #expect(file.count == 44 + 2000)
        #expect(WAVHeader.parse(file)?.dataBytes == 2000)
        #expect(Array(file[44...]) == samples.withUnsafeBytes { Array($0) })
    }

    @Test func s24InThirtyTwoBitWordsIsPackedToThreeBytes() throws {
        let dir = TempDirectory("wav24")
        let path = dir.path + "/b.wav.partial"
        let format = AudioFormat(sampleRate: 48000, channels: 1, sample: .s24le)
        let writer = try WAVWriter(path: path, format: format, expectedDataBytes: 9)
        let words: [UInt32] = [0x00_12_34_56, 0xFF_AB_CD_EF, 0x00_00_00_01]
        try words.withUnsafeBytes { try writer.append(captured: $0) }
        try writer.finish()
        let file = try FileIO.readAll(path: path, limit: 1 << 20)
        #expect(file.count == 68 + 9 + 1)  // odd data chunk gets a pad byte
        #expect(file.count >= 77 && Array(file[68..<77]) == [0x56, 0x34, 0x12, 0xEF, 0xCD, 0xAB, 0x01, 0x00, 0x00])
        #expect(file.le32(at: 4) == UInt32(file.count - 8))
    }

    @Test func filesPast4GiBBecomeRF64() throws {
        let dir = TempDirectory("rf64")
        let path = dir.path + "/big.wav.partial"
        let big: UInt64 = 5 << 30
        let writer = try WAVWriter(path: path, format: mono16, expectedDataBytes: big + 4)
        #expect(writer.reserveDS64)
        try writer.skipData(bytes: big)  // a hole: no 5 GiB written
        let tail: [Int16] = [7, -7]
        try tail.withUnsafeBytes { try writer.append(captured: $0) }
        try writer.finish()
        let headerSize = WAVHeader.size(format: mono16, reserveDS64: true)
        #expect(FileIO.fileSize(path) == Int64(headerSize) + Int64(big) + 4)
        let head = try readPrefix(path, 200)
        #expect(Array(head[0..<4]) == Array("RF64".utf8))
        #expect(head.le32(at: 4) == UInt32.max)
        #expect(Array(head[12..<16]) == Array("ds64".utf8))
        #expect(head.le64(at: 20) == UInt64(headerSize) - 8 + big + 4)  // RIFF size
        #expect(head.le64(at: 28) == big + 4)  // data size
        #expect(head.le64(at: 36) == (big + 4) / 2)  // sample frames
        let parsed = try #require(WAVHeader.parse(head))
        #expect(parsed.isRF64 && parsed.dataBytes == big + 4 && parsed.dataOffset == headerSize)
    }

    @Test func smallFilesWithReservedRoomStayPlainRIFF() throws {
        let header = WAVHeader.bytes(format: mono16, dataBytes: 100, reserveDS64: true)
        #expect(Array(header[0..<4]) == Array("RIFF".utf8))
        #expect(Array(header[12..<16]) == Array("JUNK".utf8))
        #expect(WAVHeader.parse(header)?.dataOffset == 80)
    }

    @Test func withoutReservedRoomThe4GiBLimitIsAnError() throws {
        let dir = TempDirectory("limit")
        let writer = try WAVWriter(path: dir.path + "/c.wav.partial", format: mono16, expectedDataBytes: 1000)
        try writer.skipData(bytes: WAVHeader.maxPlainDataBytes(format: mono16) / 2 * 2)
        let error = #expect(throws: BerthError.self) {
            try [Int16(1)].withUnsafeBytes { try writer.append(captured: $0) }
        }
        #expect(error?.message.contains("4 GiB") == true)
        writer.abandon()
        #expect(FileIO.fileSize(dir.path + "/c.wav.partial") == nil)
    }

    @Test func repairTakesTheSizeFromTheFile() throws {
        let dir = TempDirectory("repair")
        let path = dir.path + "/d.wav.partial"
        do {
            let writer = try WAVWriter(path: path, format: mono16, expectedDataBytes: 1 << 20)
            try [Int16](repeating: 3, count: 4801).withUnsafeBytes { try writer.append(captured: $0) }
            // No finish: as if killed. Add half a frame, as a torn write would.
        }
        let fd = open(path, O_WRONLY | O_APPEND)
        _ = [UInt8(9)].withUnsafeBytes { write(fd, $0.baseAddress, 1) }
        close(fd)
        #expect(WAVHeader.parse(try readPrefix(path, 100))?.dataBytes == 0)
        let repair = try #require(try WAVWriter.repair(path: path))
        #expect(repair.frames == 4801)
        #expect(repair.format == mono16)
        let file = try FileIO.readAll(path: path, limit: 1 << 20)
        #expect(file.count == 44 + 9602)
        #expect(WAVHeader.parse(file)?.dataBytes == 9602)
        // Not a WAV at all: nil.
        try writeFile(dir.path + "/junk", Array("hello".utf8))
        #expect(try WAVWriter.repair(path: dir.path + "/junk") == nil)
    }
}

func readPrefix(_ path: String, _ count: Int) throws -> [UInt8] {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { throw FileIO.error("open", path) }
    defer { close(fd) }
    var bytes = [UInt8](repeating: 0, count: count)
    let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, count) }
    return Array(bytes[0..<max(0, n)])
}
