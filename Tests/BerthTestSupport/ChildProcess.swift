import BerthKit
import Foundation
import Synchronization

/// A child process for tests, started with posix_spawn (Foundation's Process can hang in waitUntilExit here):
/// stdin, stdout and stderr are files; the exit status is collected with waitpid.
public final class ChildProcess: Sendable {
    public let pid: pid_t
    private let status = Mutex<Int32?>(nil)

    init(pid: pid_t) { self.pid = pid }

    /// Starts `argv` with `environment` merged over this process's environment.
    public static func spawn(
        _ argv: [String], environment: [String: String] = [:], stdin: String = "/dev/null", stdout: String, stderr: String
    ) throws -> ChildProcess {
        let path = try Command.resolve(argv[0])
        let env = ProcessInfo.processInfo.environment.merging(environment) { $1 }.map { "\($0.key)=\($0.value)" }
        var cArgv = argv.map { strdup($0) } + [nil]
        var cEnv = env.map { strdup($0) } + [nil]
        defer {
            for p in cArgv { free(p) }
            for p in cEnv { free(p) }
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdin, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        if stderr == stdout {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        } else {
            posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        var all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let r = posix_spawn(&pid, path, &actions, &attributes, &cArgv, &cEnv)
        if r != 0 { throw TestFailure("cannot start \(path): \(systemErrorText(r))") }
        return ChildProcess(pid: pid)
    }

    /// True until the process has exited (it is reaped here).
    public var isRunning: Bool { exitStatus == nil }

    /// The exit status (128 + signal for a signal death), nil while running.
    public var exitStatus: Int32? {
        status.withLock { status in
            if let status { return status }
            var raw: Int32 = 0
            let r = waitpid(pid, &raw, WNOHANG)
            guard r == pid else { return nil }
            status = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
            return status
        }
    }

    public func signal(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// Waits for the exit (polling waitpid; the process is ours, so this is cheap) and returns the status.
    public func wait(timeout: Duration = .seconds(30)) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let status = exitStatus { return status }
            guard ContinuousClock.now < deadline else { throw TestFailure("pid \(pid) did not exit within \(timeout)") }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// SIGKILL and reap, waiting at most 5 s (in 1 ms steps) rather than in a blocking waitpid: a test's teardown
    /// runs on the cooperative pool, and a process that cannot die at once (a thread in uninterruptible sleep) must
    /// not take one of its threads for ever. A process still there after 5 s is left (and said so on stderr).
    public func terminate() {
        guard isRunning else { return }
        kill(pid, SIGKILL)
        for _ in 0..<5000 {
            if !isRunning { return }
            usleep(1000)
        }
        FileHandle.standardError.write(Data("test support: pid \(pid) did not end within 5 s of SIGKILL\n".utf8))
    }
}
