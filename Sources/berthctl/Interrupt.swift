import Dispatch
import Glibc

/// Ctrl-C while berthctl follows a job: `action` runs (once per SIGINT) instead of berthctl dying, so the job can
/// be cancelled and its end reported. Default handling comes back with `cancel()`.
final class Interrupt {
    private let source: any DispatchSourceSignal

    init(_ action: @escaping @Sendable () -> Void) {
        signal(SIGINT, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler(handler: action)
        source.resume()
    }

    func cancel() {
        source.cancel()
        signal(SIGINT, SIG_DFL)
    }
}
