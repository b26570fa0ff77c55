import BerthKit
import Glibc

/// Writes one WAV file under a temporary (partial) name: a header with zero sizes first, audio appended as it
/// comes (S24_LE's 32-bit words packed to 3 bytes on the way), then `finish()` writes the real sizes, syncs and
/// closes. Moving the file to its final name is the caller's step (`RecordingLayout.publish`).
///
/// Used from one thread at a time (the writer thread).
final class WAVWriter {
    let path: String
    let format: AudioFormat
    let reserveDS64: Bool
    private(set) var dataBytes: UInt64 = 0
    private var fd: Int32
    private var scratch: [UInt8] = []

    var frames: Int64 { Int64(dataBytes / UInt64(format.fileFrameBytes)) }
    var headerSize: Int { WAVHeader.size(format: format, reserveDS64: reserveDS64) }

    /// Creates `path` (which must not exist). `expectedDataBytes` decides whether room for RF64 is reserved.
    init(path: String, format: AudioFormat, expectedDataBytes: UInt64) throws {
        self.path = path
        self.format = format
        reserveDS64 = expectedDataBytes > WAVHeader.maxPlainDataBytes(format: format)
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileIO.error("cannot create", path) }
        do {
            try writeHeader()
            if lseek(fd, off_t(headerSize), SEEK_SET) < 0 { throw FileIO.error("cannot seek in", path) }
        } catch {
            close(fd)
            unlink(path)
            throw error
        }
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    /// Appends whole frames as captured (`format.captureFrameBytes` each).
    func append(captured bytes: UnsafeRawBufferPointer) throws {
        precondition(fd >= 0, "append after finish")
        precondition(bytes.count % format.captureFrameBytes == 0, "partial frame")
        let outBytes = UInt64(bytes.count / format.sample.captureBytes * format.sample.fileBytes)
        if !reserveDS64 && dataBytes + outBytes > WAVHeader.maxPlainDataBytes(format: format) {
            throw BerthError.failed("recording \"\(path)\" would pass the 4 GiB limit of a WAV file without RF64")
        }
        if format.sample == .s24le {
            packS24(bytes)
            try scratch.withUnsafeBytes { try FileIO.writeAll(fd: fd, $0, path: path) }
        } else {
            try FileIO.writeAll(fd: fd, bytes, path: path)
        }
        dataBytes += outBytes
    }

    /// Drops the top (padding) byte of each 32-bit S24_LE word.
    private func packS24(_ bytes: UnsafeRawBufferPointer) {
        let samples = bytes.count / 4
        if scratch.count != samples * 3 { scratch = [UInt8](repeating: 0, count: samples * 3) }
        scratch.withUnsafeMutableBufferPointer { out in
            for i in 0..<samples {
                out[3 * i] = bytes[4 * i]
                out[3 * i + 1] = bytes[4 * i + 1]
                out[3 * i + 2] = bytes[4 * i + 2]
            }
        }
    }

    /// Writes the final header (and the pad byte of an odd-sized data chunk), syncs and closes.
    func finish() throws {
        precondition(fd >= 0, "finish twice")
        defer {
            close(fd)
            fd = -1
        }
        let end = off_t(headerSize) + off_t(dataBytes + (dataBytes & 1))
        if ftruncate(fd, end) != 0 { throw FileIO.error("cannot set the size of", path) }
        try writeHeader()
        if fsync(fd) != 0 { throw FileIO.error("cannot sync", path) }
    }

    /// Closes and removes the file.
    func abandon() {
        if fd >= 0 {
            close(fd)
            fd = -1
        }
        unlink(path)
    }

    private func writeHeader() throws {
        let header = WAVHeader.bytes(format: format, dataBytes: dataBytes, reserveDS64: reserveDS64)
        try header.withUnsafeBytes { try FileIO.writeAll(fd: fd, $0, at: 0, path: path) }
    }

    /// Test support: counts `bytes` of silence as written without writing them (a hole in a sparse file), so a
    /// test can pass the 4 GiB mark without 4 GiB of disk.
    func skipData(bytes: UInt64) throws {
        precondition(bytes % UInt64(format.fileFrameBytes) == 0)
        dataBytes += bytes
        if lseek(fd, off_t(headerSize) + off_t(dataBytes), SEEK_SET) < 0 { throw FileIO.error("cannot seek in", path) }
    }
}

extension WAVWriter {
    /// What repairing a file found after a crash did.
    struct Repair: Equatable {
        var format: AudioFormat
        var dataBytes: UInt64
        var frames: Int64 { Int64(dataBytes / UInt64(format.fileFrameBytes)) }
    }

    /// Repairs a partial file left by a crash: reads its header, takes the data size from the file size (whole
    /// frames only), rewrites the header and syncs. Nil when the file has no readable header (the caller
    /// removes it).
    static func repair(path: String) throws -> Repair? {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw FileIO.error("cannot open", path) }
        defer { close(fd) }
        var head = [UInt8](repeating: 0, count: 256)
        let n = head.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0, let parsed = WAVHeader.parse(Array(head[0..<n])),
            let sample = SampleFormat.from(bitsPerSample: parsed.bitsPerSample, validBits: parsed.validBits)
        else { return nil }
        let format = AudioFormat(sampleRate: parsed.sampleRate, channels: parsed.channels, sample: sample)
        guard WAVHeader.size(format: format, reserveDS64: parsed.hasReservedDS64) == parsed.dataOffset else {
            return nil
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw FileIO.error("cannot stat", path) }
        let available = max(0, Int64(info.st_size) - Int64(parsed.dataOffset))
        let frameBytes = Int64(format.fileFrameBytes)
        var dataBytes = UInt64(available / frameBytes * frameBytes)
        if !parsed.hasReservedDS64 {
            dataBytes = min(
                dataBytes, WAVHeader.maxPlainDataBytes(format: format) / UInt64(frameBytes) * UInt64(frameBytes))
        }
        if ftruncate(fd, off_t(parsed.dataOffset) + off_t(dataBytes + (dataBytes & 1))) != 0 {
            throw FileIO.error("cannot set the size of", path)
        }
        let header = WAVHeader.bytes(format: format, dataBytes: dataBytes, reserveDS64: parsed.hasReservedDS64)
        try header.withUnsafeBytes { try FileIO.writeAll(fd: fd, $0, at: 0, path: path) }
        if fsync(fd) != 0 { throw FileIO.error("cannot sync", path) }
        return Repair(format: format, dataBytes: dataBytes)
    }
}

extension SampleFormat {
    /// The format a WAV file's sample width stands for (24-bit files are always packed: S24_3LE).
    static func from(bitsPerSample: Int, validBits: Int) -> SampleFormat? {
        switch (bitsPerSample, validBits) {
        case (16, 16): .s16le
        case (24, 24): .s24le3
        case (32, 32): .s32le
        default: nil
        }
    }
}
