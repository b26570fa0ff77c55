import BerthKit
import Glibc

/// The size limits of what clients hand pickup themselves (config `pickup:`; see the README).
struct UploadLimits: Sendable, Equatable {
    /// `Deploy`: bytes through the bus (`max_upload_bytes`).
    var upload: Int
    /// `DeployFd`: bytes read from a descriptor (`max_artifact_bytes`).
    var artifact: Int

    init(_ config: PickupConfig) {
        upload = config.maxUploadBytes
        artifact = config.maxArtifactBytes
    }
}

extension PickupEngine {
    /// Refuses an upload over `max_upload_bytes`. Called on the bus thread, before the bytes reach the engine.
    nonisolated func checkUpload(name: String, size: Int) throws {
        let limit = limits.withLock { $0.upload }
        guard size <= limit else {
            throw BerthError.invalidArgument(
                "pickup Deploy of \"\(name)\": \(size) bytes is over the upload limit of \(limit) bytes "
                    + "(pickup: max_upload_bytes); pass a larger artifact as a file descriptor with DeployFd")
        }
    }

    /// Deploys an upload (`Deploy`).
    func upload(name: String, bytes: [UInt8], target: String) async -> DeploymentRecord {
        await exclusive(name: name, target: target) {
            await deploy(name: name, bytes: bytes, target: target, source: "upload")
        }
    }

    /// Deploys what descriptor `fd` holds (`DeployFd`). The descriptor is read on a worker of the blocking pool, up
    /// to `max_artifact_bytes`, before the engine is entered: a pipe whose writer dawdles holds one worker for a few
    /// seconds, never the engine (every other deployment would wait behind it). Owns `fd`: closes it, whatever
    /// happens.
    nonisolated func deployDescriptor(_ fd: Int32, name: String, target: String) async throws -> DeploymentRecord {
        let limit = limits.withLock { $0.artifact }
        let bytes = try await OSThread.run(name: "berth-pickup-fd") { () throws -> [UInt8] in
            defer { close(fd) }
            return try DescriptorArtifact.read(fd, name: name, limit: limit)
        }
        return await deployRead(name: name, bytes: bytes, target: target)
    }

    private func deployRead(name: String, bytes: [UInt8], target: String) async -> DeploymentRecord {
        await exclusive(name: name, target: target) {
            await deploy(name: name, bytes: bytes, target: target, source: "descriptor")
        }
    }
}

/// Reads an artifact from a descriptor a client passed (`DeployFd`): a regular file or a pipe, never more than
/// `limit` bytes (one more is read to tell "exactly the limit" from "over it"), and a pipe only while its writer
/// keeps writing: `idle` without data, or `deadline` in all, ends the read with a Timeout error the caller sees
/// before its own bus timeout (25 s by default).
enum DescriptorArtifact {
    static let deadline: Duration = .seconds(20)
    static let idle: Duration = .seconds(5)
    static let chunk = 1 << 20

    static func read(_ fd: Int32, name: String, limit: Int, deadline: Duration = deadline) throws -> [UInt8] {
        let what = "pickup DeployFd of \"\(name)\""
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw SystemError("\(what): cannot stat the descriptor \(fd)", errno: errno)
        }
        let kind = info.st_mode & S_IFMT
        guard kind == S_IFREG || kind == S_IFIFO else {
            throw BerthError.invalidArgument(
                "\(what): the descriptor is \(kindName(kind)), not a regular file or a pipe")
        }
        // A regular file of /proc or /sys says 0 bytes (or anything) and may never end: refused as DeployFile does.
        if kind == S_IFREG, let system = FileSystem.kernelFileSystem(fd) {
            throw BerthError.invalidArgument(
                "\(what): the descriptor is a file of \(system), whose size says nothing of its content, not a "
                    + "regular file or a pipe")
        }
        guard fcntl(fd, F_GETFL) & O_ACCMODE != O_WRONLY else {
            throw BerthError.invalidArgument("\(what): the descriptor is open for writing only")
        }
        let pipe = kind == S_IFIFO
        if !pipe && Int(info.st_size) > limit { throw tooLarge(what, "\(info.st_size) bytes", limit) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(pipe ? min(limit + 1, chunk) : Int(info.st_size) + 1)
        var buffer = [UInt8](repeating: 0, count: min(limit + 1, chunk))
        let clock = ContinuousClock()
        let end = clock.now + deadline
        while bytes.count <= limit {
            if pipe {
                try waitReadable(
                    fd, until: min(end, clock.now + idle), clock: clock, allowed: deadline, what: what, read: bytes.count)
            }
            let wanted = min(buffer.count, limit + 1 - bytes.count)
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, wanted) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw SystemError("\(what): cannot read the descriptor", errno: errno)
            }
            if n == 0 { return bytes }
            bytes.append(contentsOf: buffer[0..<n])
        }
        throw tooLarge(what, "more than \(limit) bytes", limit)
    }

    /// Waits until a pipe has data or its writer closed it; a Timeout error at `end`.
    private static func waitReadable(
        _ fd: Int32, until end: ContinuousClock.Instant, clock: ContinuousClock, allowed: Duration, what: String,
        read: Int
    ) throws {
        while true {
            let left = clock.now.duration(to: end)
            guard left > .zero else {
                throw BerthError(
                    .timeout,
                    "\(what): the pipe was not closed within \(allowed), or sent nothing for \(idle) (\(read) bytes "
                        + "read); close its write end")
            }
            let ms = Int32(clamping: left.microsecondsClamped / 1000 + 1)
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&poller, 1, ms)
            if r > 0 { return }  // data, end of file (POLLHUP) or an error the read reports
            if r < 0 && errno != EINTR { throw SystemError("\(what): cannot wait for the pipe", errno: errno) }
        }
    }

    private static func tooLarge(_ what: String, _ size: String, _ limit: Int) -> BerthError {
        .invalidArgument(
            "\(what): the artifact holds \(size), over the limit of \(limit) bytes (pickup: max_artifact_bytes)")
    }

    private static func kindName(_ kind: mode_t) -> String {
        switch kind {
        case S_IFDIR: return "a folder"
        case S_IFSOCK: return "a socket"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        default: return "not a file"
        }
    }
}
