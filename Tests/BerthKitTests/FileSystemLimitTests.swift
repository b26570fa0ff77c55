import BerthKit
import BerthTestSupport
import Foundation
import Glibc
import Synchronization
import Testing

/// Every file read has a size limit and reads regular files only: a FIFO, a device, a file of /proc or a 1 TiB
/// sparse file is refused at once, with a sentence naming the path, the size and the limit.
@Suite struct FileSystemLimitTests {
    static func tempDir() throws -> String {
        var template = Array("/tmp/berth-fs-XXXXXX".utf8CString)
        guard mkdtemp(&template) != nil else { throw TestFailure("mkdtemp failed") }
        return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The refusal `body` throws; records an issue when it throws nothing or something else.
    static func refusal(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> FileRefusal? {
        do {
            try body()
            Issue.record("expected a FileRefusal, got none", sourceLocation: sourceLocation)
        } catch let refusal as FileRefusal {
            return refusal
        } catch {
            Issue.record("expected a FileRefusal, got \(error)", sourceLocation: sourceLocation)
        }
        return nil
    }

    @Test func aSparseTerabyteIsRefusedByItsSizeBeforeAnythingIsRead() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/big.bin"
        #expect(truncate(path, 0) != 0)  // not there yet
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        #expect(fd >= 0 && ftruncate(fd, 1 << 40) == 0)
        close(fd)
        let refused = Self.refusal { _ = try FileSystem.read(path) }
        #expect(refused?.kind == .tooLarge)
        #expect(
            refused?.description
                == "\"\(path)\" is 1099511627776 bytes (1 TiB), over the limit of 67108864 bytes (64 MiB)")
        let text = Self.refusal { _ = try FileSystem.readText(path, limit: 1000) }
        #expect(text?.description == "\"\(path)\" is 1099511627776 bytes (1 TiB), over the limit of 1000 bytes")
    }

    @Test func aFileAtTheLimitIsReadAndOneByteMoreIsNot() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/f"
        try FileSystem.writeAtomically(path, [UInt8](repeating: 7, count: 100_000))
        #expect(try FileSystem.read(path, limit: 100_000)?.count == 100_000)
        #expect(Self.refusal { _ = try FileSystem.read(path, limit: 99_999) }?.kind == .tooLarge)
        #expect(try FileSystem.read(dir + "/missing") == nil)
    }

    @Test func aFIFOIsRefusedAtOnceAndNeverWaitedFor() async throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/fifo.yaml"
        #expect(mkfifo(path, 0o600) == 0)
        // The read runs on a thread of its own: before the fix, open(2) waits for a writer for ever. Should it
        // still be waiting after 5 s, a writer comes and goes to free it, and the test fails.
        final class Outcome: Sendable {
            let text = Mutex<String?>(nil)
            var done: Bool { text.withLock { $0 != nil } }
        }
        let outcome = Outcome()
        try OSThread.start(name: "fifo-read") {
            let text: String
            do {
                _ = try FileSystem.read(path)
                text = "read"
            } catch let refusal as FileRefusal {
                text = refusal.description
            } catch {
                text = "\(error)"
            }
            outcome.text.withLock { $0 = text }
        }
        let deadline = ContinuousClock.now + .seconds(5)
        while !outcome.done && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        if !outcome.done {
            Issue.record("reading a FIFO still waits after 5 s")
            let writer = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
            if writer >= 0 { close(writer) }
            return
        }
        #expect(outcome.text.withLock { $0 } == "\"\(path)\" is a FIFO, not a regular file")
        // So is a config file: the parser names the file and the reason.
        let message = ConfigTests.configError { _ = try YAMLParser.parseFile(atPath: path) }
        #expect(message == "\(path): cannot read the file: it is a FIFO, not a regular file")
    }

    @Test func devicesAndFoldersAreRefused() {
        #expect(
            Self.refusal { _ = try FileSystem.read("/dev/zero") }?.description
                == "\"/dev/zero\" is a character device, not a regular file")
        #expect(
            Self.refusal { _ = try FileSystem.read("/tmp") }?.description == "\"/tmp\" is a folder, not a regular file")
    }

    @Test func kernelFilesAreRefusedByReadAndBoundedByReadKernelText() throws {
        // /proc/self/pagemap says it is empty and never ends: before the fix a read of it grew without bound.
        let pagemap = Self.refusal { _ = try FileSystem.read("/proc/self/pagemap") }
        #expect(pagemap?.kind == .notRegular)
        #expect(pagemap?.description.hasPrefix("\"/proc/self/pagemap\" is a file of procfs (/proc)") == true)
        #expect(Self.refusal { _ = try FileSystem.read("/sys/kernel/mm/transparent_hugepage/enabled") } != nil)
        #expect(
            ConfigTests.configError { _ = try YAMLParser.parseFile(atPath: "/proc/self/status") }?
                .hasPrefix("/proc/self/status: cannot read the file: it is a file of procfs (/proc)") == true)
        // readKernelText reads such files, and stops at its limit whatever the file says of its size.
        let stat = try #require(try FileSystem.readKernelText("/proc/self/stat"))
        #expect(stat.hasPrefix("\(getpid()) ("))
        let endless = Self.refusal { _ = try FileSystem.readKernelText("/proc/self/pagemap", limit: 1 << 20) }
        #expect(
            endless?.description
                == "\"/proc/self/pagemap\" holds more than the limit of 1048576 bytes (1 MiB) "
                + "(its size said 0 bytes when the read began)")
    }

    @Test func sizesReadAsPeopleWriteThem() {
        #expect(FileSystem.describeSize(0) == "0 bytes")
        #expect(FileSystem.describeSize(1) == "1 byte")
        #expect(FileSystem.describeSize(1023) == "1023 bytes")
        #expect(FileSystem.describeSize(1024) == "1024 bytes (1 KiB)")
        #expect(FileSystem.describeSize(1_500_000) == "1500000 bytes (1.4 MiB)")
        #expect(FileSystem.describeSize(256 << 20) == "268435456 bytes (256 MiB)")
    }
}
