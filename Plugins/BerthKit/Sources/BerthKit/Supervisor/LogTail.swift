import Glibc

/// Reads the end of a log file for `Logs(lines)`: backwards from the end in fixed chunks, never more than
/// `maxBytes` in all, in time linear in what it reads (each byte is read and scanned once). A line longer than
/// `maxLineBytes` is cut and marked; so is the oldest line when its start lies beyond `maxBytes`.
enum LogTail {
    /// At most this much of the file is read for one call (4 MiB).
    static let defaultMaxBytes = 4 << 20
    /// A longer line is cut to this many bytes (64 KiB) and marked.
    static let defaultMaxLineBytes = 64 << 10
    static let chunk = 64 << 10

    static func read(
        path: String, lines: Int, maxBytes: Int = defaultMaxBytes, maxLineBytes: Int = defaultMaxLineBytes
    ) -> [String] {
        guard lines > 0, maxBytes > 0 else { return [] }
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return [] }
        let size = Int(info.st_size)
        let window = min(size, maxBytes)
        guard window > 0 else { return [] }
        // Fill `bytes` from its end backwards; `first` is the index of the oldest byte read so far.
        var bytes = [UInt8](repeating: 0, count: window)
        var first = window
        var newlines = 0
        let endsWithNewline = lastByte(fd, size) == 10
        // `lines` complete lines need `lines` line ends before the last line (plus the file's own final one).
        let wanted = lines + (endsWithNewline ? 1 : 0)
        bytes.withUnsafeMutableBufferPointer { buffer in
            while first > 0 && newlines < wanted {
                let length = min(chunk, first)
                let offset = size - (window - first) - length
                let got = pread(fd, buffer.baseAddress! + first - length, length, off_t(offset))
                if got < 0 && errno == EINTR { continue }
                guard got == length else { break }  // the file shrank (rotated): keep what was read
                first -= length
                for index in first..<(first + length) where buffer[index] == 10 { newlines += 1 }
            }
        }
        let startOfFile = size - (window - first) == 0
        var pieces = bytes[first...].split(separator: 10, omittingEmptySubsequences: false)
        if endsWithNewline, pieces.last?.isEmpty == true { pieces.removeLast() }
        // The oldest piece is a whole line only when it starts the file or follows a line end that was read.
        let firstIsPartial = !startOfFile && newlines < wanted
        if !startOfFile && !firstIsPartial { pieces.removeFirst() }
        let kept = pieces.suffix(lines)
        var result: [String] = []
        result.reserveCapacity(kept.count)
        for (index, piece) in zip(kept.indices, kept) {
            if index == pieces.startIndex && firstIsPartial {
                result.append("[cut: the start of this line is more than \(maxBytes) bytes back] " + text(piece.suffix(maxLineBytes)))
            } else if piece.count > maxLineBytes {
                result.append(text(piece.prefix(maxLineBytes)) + " [cut: line of \(piece.count) bytes]")
            } else {
                result.append(text(piece))
            }
        }
        return result
    }

    private static func text(_ bytes: ArraySlice<UInt8>) -> String { String(decoding: bytes, as: UTF8.self) }

    private static func lastByte(_ fd: Int32, _ size: Int) -> UInt8? {
        guard size > 0 else { return nil }
        var byte: UInt8 = 0
        return pread(fd, &byte, 1, off_t(size - 1)) == 1 ? byte : nil
    }
}
