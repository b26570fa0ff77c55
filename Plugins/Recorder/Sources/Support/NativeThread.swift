import BerthKit
import Glibc

/// Dedicated OS threads for blocking work (ALSA reads, file writes, fsync, SQLite), so that the cooperative
/// pool never blocks.
enum NativeThread {
    private final class Box {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    /// Starts a detached thread running `body`. `name` shows in `top -H` (15 bytes at most).
    static func detach(name: String, _ body: @escaping @Sendable () -> Void) {
        let label = String(name.utf8.prefix(15)) ?? "berth-worker"
        let box = Unmanaged.passRetained(
            Box({
                setName(label)
                body()
            })
        ).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(
            &thread, nil,
            { raw in
                let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
                box.body()
                return nil
            }, box)
        guard rc == 0 else {
            Unmanaged<Box>.fromOpaque(box).release()
            fatalError("pthread_create failed: \(systemErrorText(rc))")
        }
        pthread_detach(thread)
    }

    /// Names the calling thread (pthread_setname_np needs _GNU_SOURCE, which Glibc's module does not set).
    private static func setName(_ name: String) {
        let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = name.withCString { write(fd, $0, strlen($0)) }
        close(fd)
    }

    /// Runs blocking `body` on a thread of its own and returns its result to async code.
    static func run<T: Sendable>(name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            detach(name: name) {
                continuation.resume(with: Result { try body() })
            }
        }
    }
}
