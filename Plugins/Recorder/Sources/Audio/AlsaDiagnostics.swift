import BerthKit
import CAlsa
import Glibc
import Synchronization

/// alsa-lib prints its own diagnostics ("ALSA lib pcm.c:2666:(snd_pcm_open_noupdate) Unknown PCM nope") to
/// stderr. On threads that call ALSA we install a thread-local handler instead: the text goes to the log at
/// debug level and the last message is kept, so that an error can quote ALSA's own reason.
enum AlsaDiagnostics {
    private static let logger = Logger(label: "berth.recorder.alsa")
    private static let lastMessages = Mutex<[UInt: String]>([:])

    /// Routes this thread's ALSA messages through the handler. Cheap; call before ALSA work on any thread.
    static func install() {
        _ = snd_lib_error_set_local { file, line, function, errorCode, format, arguments in
            guard let format, let arguments else { return }
            var buffer = [CChar](repeating: 0, count: 512)
            _ = buffer.withUnsafeMutableBufferPointer { vsnprintf($0.baseAddress, $0.count, format, arguments) }
            let text = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            let detail = errorCode != 0 ? "\(text): \(systemErrorText(errorCode))" : text
            AlsaDiagnostics.record(detail)
            let place = file.map { String(cString: $0) } ?? "?"
            let fn = function.map { String(cString: $0) } ?? "?"
            AlsaDiagnostics.logger.debug("ALSA \(place):\(line) \(fn): \(detail)")
        }
    }

    /// Restores ALSA's default handling on this thread (for threads borrowed only for a moment).
    static func uninstall() {
        _ = snd_lib_error_set_local(nil)
        clear()
    }

    private static func record(_ message: String) {
        let thread = UInt(pthread_self())
        lastMessages.withLock { $0[thread] = message }
    }

    /// Forgets this thread's last message (before an operation whose messages we want).
    static func clear() {
        let thread = UInt(pthread_self())
        _ = lastMessages.withLock { $0.removeValue(forKey: thread) }
    }

    /// This thread's last ALSA message since `clear()`, if any.
    static func take() -> String? {
        let thread = UInt(pthread_self())
        return lastMessages.withLock { $0.removeValue(forKey: thread) }
    }
}
