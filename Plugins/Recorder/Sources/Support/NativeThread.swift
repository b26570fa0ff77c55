import BerthKit
import Glibc

/// Dedicated OS threads for blocking work (ALSA reads, file writes, fsync, SQLite), so that the cooperative
/// pool never blocks.
enum NativeThread {
    /// Starts a detached thread running `body` (BerthKit's `OSThread`). `name` shows in `top -H`.
    static func detach(name: String, _ body: @escaping @Sendable () -> Void) {
        OSThread.start(name: name, body)
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
