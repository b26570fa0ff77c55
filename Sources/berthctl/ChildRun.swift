import BerthKit
import CBerthShim
import Dispatch
import Glibc
import Synchronization

/// The child processes of `-H`/`--hosts`: a berthctl per host (captured, with a deadline) and ssh or berthctl
/// with this terminal. Spawns, reads and `waitpid` block, so each child is run on its own thread, never on the
/// cooperative pool.
enum ChildRun {
    struct Captured: Sendable {
        var status: Int32
        var stdout: String
        var stderr: String
        var timedOut: Bool
    }

    /// The process groups of the captured children still running (for Ctrl-C).
    static let groups = Mutex<Set<pid_t>>([])
    /// What one child may print before the rest is dropped.
    static let outputLimit = 4 << 20

    /// Runs `argv` (path `path`) in its own process group with stdin from /dev/null and stdout and stderr
    /// collected. At `timeout` the whole group (berthctl and the ssh it started) is killed. The child dies with
    /// its spawning thread (PR_SET_PDEATHSIG), so none outlives berthctl.
    static func capture(_ path: String, _ argv: [String], environment: [String], timeout: Duration) async -> Captured {
        await onOwnThread("berthctl-host") {
            captureBlocking(path, argv, environment: environment, timeout: timeout)
        } failed: { error in
            Captured(status: 1, stdout: "", stderr: error.message, timedOut: false)
        }
    }

    /// Runs blocking `work` on a thread of its own (never on the cooperative pool) and returns its result, or what
    /// `failed` makes of the error when no thread can start.
    private static func onOwnThread<T: Sendable>(
        _ name: String, _ work: @escaping @Sendable () -> T, failed: (BerthError) -> T
    ) async -> T {
        await withCheckedContinuation { continuation in
            do {
                try OSThread.start(name: name) { continuation.resume(returning: work()) }
            } catch {
                continuation.resume(returning: failed(BerthError.wrapping(error)))
            }
        }
    }

    private static func captureBlocking(_ path: String, _ argv: [String], environment: [String], timeout: Duration)
        -> Captured
    {
        func failed(_ what: String, _ code: Int32) -> Captured {
            Captured(
                status: 1, stdout: "", stderr: "cannot start berthctl for this host: \(what): \(systemErrorText(code))",
                timedOut: false)
        }
        var out: [Int32] = [-1, -1]
        var err: [Int32] = [-1, -1]
        guard cberth_output_pipe(&out) == 0 else { return failed("pipe", errno) }
        guard cberth_output_pipe(&err) == 0 else {
            let e = errno
            close(out[0])
            close(out[1])
            return failed("pipe", e)
        }
        let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
        var cArgv = argv.map { strdup($0) } + [nil]
        var cEnv = (DetachedProcess.currentEnvironment() + environment).map { strdup($0) } + [nil]
        defer {
            for p in cArgv { free(p) }
            for p in cEnv { free(p) }
        }
        var pid = pid_t()
        var step: Int32 = 0
        let spawned = path.withCString { cPath in
            cArgv.withUnsafeMutableBufferPointer { argvBuffer in
                cEnv.withUnsafeMutableBufferPointer { envBuffer in
                    var request = cberth_spawn_request(
                        path: cPath, argv: argvBuffer.baseAddress, envp: envBuffer.baseAddress, cwd: nil,
                        stdin_fd: null,
                        stdout_fd: out[1], stderr_fd: err[1], pdeathsig: SIGKILL, cgroup_procs_fd: -1)
                    return cberth_spawn(&request, &pid, &step)
                }
            }
        }
        close(null)
        close(out[1])
        close(err[1])
        defer {
            close(out[0])
            close(err[0])
        }
        guard spawned == 0 else { return failed("spawn", spawned) }
        groups.withLock { _ = $0.insert(pid) }
        defer { groups.withLock { _ = $0.remove(pid) } }

        var stdout: [UInt8] = []
        var stderr: [UInt8] = []
        var open = [true, true]
        var timedOut = false
        let deadline = ContinuousClock.now + timeout
        var buffer = [UInt8](repeating: 0, count: 16384)
        while open[0] || open[1] {
            let left = deadline - ContinuousClock.now
            if left <= .zero {
                timedOut = true
                kill(-pid, SIGKILL)
                break
            }
            var fds = [
                pollfd(fd: open[0] ? out[0] : -1, events: Int16(POLLIN), revents: 0),
                pollfd(fd: open[1] ? err[0] : -1, events: Int16(POLLIN), revents: 0),
            ]
            let ms = Int32(
                clamping: left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1)
            let ready = poll(&fds, 2, ms)
            if ready < 0 && errno != EINTR { break }
            for (i, fd) in [out[0], err[0]].enumerated() where open[i] && fds[i].revents != 0 {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n > 0 {
                    if i == 0 {
                        if stdout.count < outputLimit { stdout += buffer[0..<n] }
                    } else if stderr.count < outputLimit {
                        stderr += buffer[0..<n]
                    }
                } else if n == 0 || (errno != EAGAIN && errno != EINTR) {
                    open[i] = false
                }
            }
        }
        // Output closed (or the deadline passed): the child is ending or killed; a child that closed its output
        // but lives on is held to the same deadline.
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, timedOut ? 0 : WNOHANG)
            if r == pid { break }
            if r < 0 && errno != EINTR { break }
            if r == 0 {
                if ContinuousClock.now >= deadline {
                    timedOut = true
                    kill(-pid, SIGKILL)
                } else {
                    usleep(10_000)
                }
            }
        }
        // What the child left behind in its group (ssh) goes with it.
        kill(-pid, SIGKILL)
        let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Captured(
            status: code, stdout: String(decoding: stdout, as: UTF8.self),
            stderr: String(decoding: stderr, as: UTF8.self),
            timedOut: timedOut)
    }

    /// Ctrl-C or SIGTERM while hosts run: their process groups are killed and berthctl exits 130.
    static func killGroupsOnInterrupt() -> Interruption {
        Interruption {
            for group in groups.withLock({ $0 }) { kill(-group, SIGKILL) }
            CLI.printError("interrupted; the hosts still running were stopped")
            Glibc.exit(130)
        }
    }

    final class Interruption {
        private let sources: [any DispatchSourceSignal]

        init(_ action: @escaping @Sendable () -> Void) {
            sources = [SIGINT, SIGTERM].map { number in
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler(handler: action)
                source.resume()
                return source
            }
        }

        func cancel() {
            for source in sources { source.cancel() }
            signal(SIGINT, SIG_DFL)
            signal(SIGTERM, SIG_DFL)
        }
    }

    /// Runs a program with this process's stdin, stdout and stderr, in its process group (Ctrl-C reaches it), and
    /// returns its exit code.
    static func passThrough(_ path: String, _ argv: [String]) async -> Int32 {
        await spawnAndWait(path, argv, environment: [])
    }

    /// Runs a program with this stdin and stderr and its stdout through `transform`, line by line, to ours.
    static func filterStdout(
        _ path: String, _ argv: [String], environment: [String], _ transform: @escaping @Sendable (String) -> String
    ) async -> Int32 {
        await spawnAndWait(path, argv, environment: environment, filter: transform)
    }

    private static func spawnAndWait(
        _ path: String, _ argv: [String], environment: [String], filter: (@Sendable (String) -> String)? = nil
    ) async -> Int32 {
        await onOwnThread("berthctl-child") {
            spawnAndWaitBlocking(path, argv, environment: environment, filter: filter)
        } failed: { error in
            CLI.printError(error.message)
            return 1
        }
    }

    private static func spawnAndWaitBlocking(
        _ path: String, _ argv: [String], environment: [String], filter: (@Sendable (String) -> String)?
    ) -> Int32 {
        var fds: [Int32] = [-1, -1]
        if filter != nil {
            guard pipe(&fds) == 0 else {
                CLI.printError("pipe: \(systemErrorText(errno))")
                return 1
            }
            for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }  // this is the only child being spawned
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if filter != nil { posix_spawn_file_actions_adddup2(&actions, fds[1], 1) }
        var cArgv = argv.map { strdup($0) } + [nil]
        var cEnv = (DetachedProcess.currentEnvironment() + environment).map { strdup($0) } + [nil]
        defer {
            for p in cArgv { free(p) }
            for p in cEnv { free(p) }
        }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, path, &actions, nil, &cArgv, &cEnv)
        if let filter {
            close(fds[1])
            defer { close(fds[0]) }
            if spawned == 0 {
                var pending: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 16384)
                func emit(_ line: [UInt8]) {
                    var text = filter(String(decoding: line, as: UTF8.self)) + "\n"
                    _ = text.withUTF8 { write(1, $0.baseAddress, $0.count) }
                }
                while true {
                    let n = buffer.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { break }
                    pending += buffer[0..<n]
                    while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                        emit(Array(pending[..<newline]))
                        pending.removeSubrange(...newline)
                    }
                }
                if !pending.isEmpty { emit(pending) }
            }
        }
        guard spawned == 0 else {
            CLI.printError("cannot run \(path): \(systemErrorText(spawned))")
            return 127
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}
