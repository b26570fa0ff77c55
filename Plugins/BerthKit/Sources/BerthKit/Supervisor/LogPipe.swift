import Glibc
import Synchronization

/// The read end of the pipe a child's stdout and stderr write to, copied into the unit's `LogFile` on the epoll
/// thread. It closes at EOF (every writer gone) or at `finish()` (the run ended; whatever is buffered is kept).
final class LogPipe: Sendable {
    private struct State {
        var fd: Int32
        var token: FDWatcher.Token?
    }
    private let state: Mutex<State>
    private let log: LogFile?
    private let watcher: FDWatcher

    /// Takes ownership of `fd` (non-blocking) and starts copying.
    init(fd: Int32, log: LogFile?, watcher: FDWatcher) {
        self.log = log
        self.watcher = watcher
        state = Mutex(State(fd: fd, token: nil))
        let token = try? watcher.watch(fd: fd, events: .readable) { [weak self] _ in self?.drain() }
        state.withLock { $0.token = token }
    }

    /// Copies what is buffered (at most 1 MiB a call, so that a chatty child cannot starve the epoll thread; the
    /// watch is level-triggered and calls again); closes at EOF.
    func drain() {
        let fd = state.withLock { $0.fd }
        guard fd >= 0 else { return }
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        for _ in 0..<16 {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count > 0 {
                buffer.withUnsafeBytes { log?.append(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
                continue
            }
            if count < 0 && errno == EINTR { continue }
            if count == 0 { finish() }
            return
        }
    }

    /// Copies what is left and closes the pipe.
    func finish() {
        let (fd, token) = state.withLock { state -> (Int32, FDWatcher.Token?) in
            defer {
                state.fd = -1
                state.token = nil
            }
            return (state.fd, state.token)
        }
        guard fd >= 0 else { return }
        if let token { watcher.unwatch(token, fd: fd) }
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        for _ in 0..<16 {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            buffer.withUnsafeBytes { log?.append(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
        }
        close(fd)
    }
}
