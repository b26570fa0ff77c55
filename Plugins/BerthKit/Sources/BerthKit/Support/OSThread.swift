import CBerthShim
import Glibc

/// A dedicated OS thread for blocking loops (the bus loop, ALSA capture, epoll), outside the cooperative pool.
public enum OSThread {
    private final class Body {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }

    /// Starts a detached thread running `body`. `name` (at most 15 bytes) shows in `ps -L` and /proc.
    @discardableResult
    public static func start(name: String, _ body: @escaping @Sendable () -> Void) -> pthread_t {
        let threadName = String(decoding: name.utf8.prefix(15), as: UTF8.self)
        let box = Unmanaged.passRetained(Body({
            cberth_set_thread_name(threadName)
            body()
        })).toOpaque()
        var thread = pthread_t()
        let r = pthread_create(
            &thread, nil,
            { raw in
                let body = Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue()
                body.run()
                return nil
            }, box)
        precondition(r == 0, "pthread_create failed: \(systemErrorText(r))")
        pthread_detach(thread)
        return thread
    }
}
