import BerthKit
import Glibc

/// Runs a short program (`systemctl --user is-enabled ...`) and collects its exit status and output. The spawn,
/// the reads and `waitpid` block, so they run on a dedicated thread, never on the cooperative pool.
struct ProgramOutput: Sendable {
    var status: Int32
    /// stdout and stderr together, trimmed.
    var text: String

    /// nil when the program cannot be found in PATH.
    static func run(_ argv: [String]) async -> ProgramOutput? {
        guard let first = argv.first, let path = DetachedProcess.findExecutable(first) else { return nil }
        return await withCheckedContinuation { continuation in
            do {
                try OSThread.start(name: "berthctl-run") { continuation.resume(returning: runBlocking(path, argv)) }
            } catch {
                continuation.resume(returning: ProgramOutput(status: 127, text: BerthError.wrapping(error).message))
            }
        }
    }

    private static func runBlocking(_ path: String, _ argv: [String]) -> ProgramOutput? {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return nil }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }  // berthctl spawns nothing else concurrently
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
        var cArgv = argv.map { strdup($0) } + [nil]
        defer { for p in cArgv { free(p) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, path, &actions, nil, &cArgv, environ)
        close(fds[1])
        defer { close(fds[0]) }
        guard spawned == 0 else { return nil }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
            if n > 0 {
                bytes += buffer[0..<n]
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                break
            }
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let text = String(decoding: bytes, as: UTF8.self)
        return ProgramOutput(status: code, text: text.split(whereSeparator: \.isNewline).joined(separator: "; "))
    }
}
