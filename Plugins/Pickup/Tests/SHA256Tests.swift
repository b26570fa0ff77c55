import BerthTestSupport
import Foundation
import Testing

@testable import PickupPlugin

/// The plugin's SHA-256 against `sha256sum` on lengths around the block and padding edges, and streamed input.
@Suite struct SHA256Tests {
    @Test(arguments: [0, 1, 3, 55, 56, 63, 64, 65, 119, 120, 128, 1000, 100_003])
    func matchesSha256sum(length: Int) async throws {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let file = NSTemporaryDirectory() + "sha-test-\(UUID().uuidString)"
        _ = FileManager.default.createFile(atPath: file, contents: Data(bytes))
        defer { try? FileManager.default.removeItem(atPath: file) }
        #expect(SHA256.hex(bytes) == (try await Files.sha256sum(file)))
    }

    @Test func knownVectorsAndStreaming() {
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let text = Array(String(repeating: "pickup ", count: 300).utf8)
        var hasher = SHA256()
        for chunk in stride(from: 0, to: text.count, by: 37) {
            hasher.update(Array(text[chunk..<min(chunk + 37, text.count)]))
        }
        #expect(hasher.finalizeHex() == SHA256.hex(text))
    }

    @Test func inotifyBufferParsing() {
        // Two packed records: a named one (name padded to 16 bytes) and the overflow record with no name.
        var bytes: [UInt8] = []
        func append(_ wd: Int32, _ mask: UInt32, _ name: String, padded: Int) {
            withUnsafeBytes(of: wd.littleEndian) { bytes += $0 }
            withUnsafeBytes(of: mask.littleEndian) { bytes += $0 }
            withUnsafeBytes(of: UInt32(0)) { bytes += $0 }
            withUnsafeBytes(of: UInt32(padded).littleEndian) { bytes += $0 }
            var nameBytes = Array(name.utf8)
            nameBytes += [UInt8](repeating: 0, count: padded - nameBytes.count)
            bytes += nameBytes
        }
        append(3, InotifyEvent.closeWrite, "web.yaml", padded: 16)
        append(-1, InotifyEvent.overflow, "", padded: 0)
        let events = bytes.withUnsafeBytes { Inotify.parse($0) }
        #expect(
            events == [
                InotifyEvent(wd: 3, mask: InotifyEvent.closeWrite, cookie: 0, name: "web.yaml"),
                InotifyEvent(wd: -1, mask: InotifyEvent.overflow, cookie: 0, name: ""),
            ])
    }
}
