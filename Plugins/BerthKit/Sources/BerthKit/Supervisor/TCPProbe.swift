import CBerthShim
import Glibc
import Synchronization

/// Readiness by TCP: connects to 127.0.0.1:port without blocking, retrying with a short backoff (5 ms doubling
/// to 100 ms) until a connection is accepted, then calls `onReady` once. Runs on the epoll thread.
final class TCPProbe: Sendable {
    private struct State {
        var fd: Int32 = -1
        var token: FDWatcher.Token?
        var retry: FDWatcher.Token?
        var delayUSec: UInt64 = 5_000
        var done = false
    }
    private let state = Mutex(State())
    private let port: UInt16
    private let watcher: FDWatcher
    private let onReady: @Sendable () -> Void

    init(port: UInt16, watcher: FDWatcher, onReady: @escaping @Sendable () -> Void) {
        self.port = port
        self.watcher = watcher
        self.onReady = onReady
    }

    func start() { attempt() }

    /// Stops probing; `onReady` is not called afterwards.
    func cancel() {
        state.withLock { state in
            state.done = true
            closeSocket(&state)
            if let retry = state.retry { watcher.cancel(retry) }
        }
    }

    private func attempt() {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return retryLater() }
        let result = Loopback.connect(fd, port: port)
        if result == 0 {
            close(fd)
            return succeed()
        }
        guard errno == EINPROGRESS else {
            close(fd)
            return retryLater()
        }
        let proceed = state.withLock { state -> Bool in
            guard !state.done else { return false }
            state.fd = fd
            return true
        }
        guard proceed else {
            close(fd)
            return
        }
        let token = try? watcher.watch(fd: fd, events: .writable) { [weak self] _ in self?.connected(fd) }
        state.withLock { $0.token = token }
    }

    private func connected(_ fd: Int32) {
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
        state.withLock { closeSocket(&$0) }
        if error == 0 { succeed() } else { retryLater() }
    }

    private func succeed() {
        let first = state.withLock { state -> Bool in
            defer { state.done = true }
            return !state.done
        }
        if first { onReady() }
    }

    private func retryLater() {
        state.withLock { state in
            guard !state.done else { return }
            let delay = state.delayUSec
            state.delayUSec = min(delay * 2, 100_000)
            state.retry = watcher.after(.microseconds(delay)) { [weak self] in self?.attempt() }
        }
    }

    private func closeSocket(_ state: inout State) {
        guard state.fd >= 0 else { return }
        if let token = state.token { watcher.unwatch(token, fd: state.fd) }
        close(state.fd)
        state.fd = -1
        state.token = nil
    }
}
