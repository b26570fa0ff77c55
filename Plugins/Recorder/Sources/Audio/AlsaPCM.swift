import BerthKit
import CAlsa
import Glibc

/// What to open and how: the ALSA side of the config.
struct CaptureSettings: Sendable, Equatable {
    var device: String
    /// Inline ALSA configuration; when set, `device` is looked up in it alone (`snd_pcm_open_lconf`).
    var alsaConfig: String?
    var format: AudioFormat
    var periodUSec: UInt32
    var bufferUSec: UInt32
    /// For PCMs not paced by hardware (a `type file` replay read as fast as it goes): when the writer is
    /// behind, wait for it instead of dropping audio (`wait_for_writer`). Never for a real device.
    var waitForWriter = false
}

/// One open capture PCM, configured for interleaved reads of exactly the requested rate, channels and format.
/// The only place that touches alsa-lib's PCM API; owned by one thread (the capture thread, or a check).
final class AlsaPCM {
    enum ReadResult {
        case frames(Int)
        /// The ring buffer overflowed (-EPIPE) and the stream was recovered: samples were lost.
        case overrun
        case failed(BerthError)
    }

    let settings: CaptureSettings
    private(set) var periodFrames = 0
    private let pcm: OpaquePointer
    private let config: OpaquePointer?

    var device: String { settings.device }

    /// Opens and configures the PCM. Errors: `.deviceUnavailable` when it cannot be opened, `.invalidConfig` when
    /// it refuses the parameters or the inline configuration does not parse. Call `AlsaDiagnostics.install()` on
    /// the thread first to get ALSA's own reasons into the messages.
    init(_ settings: CaptureSettings) throws {
        self.settings = settings
        AlsaDiagnostics.clear()
        var config: OpaquePointer?
        if let text = settings.alsaConfig { config = try Self.loadConfig(text) }
        var handle: OpaquePointer?
        // Non-blocking open: a busy hardware device fails at once rather than hanging the thread.
        let rc =
            if let config {
                snd_pcm_open_lconf(&handle, settings.device, SND_PCM_STREAM_CAPTURE, SND_PCM_NONBLOCK, config)
            } else {
                snd_pcm_open(&handle, settings.device, SND_PCM_STREAM_CAPTURE, SND_PCM_NONBLOCK)
            }
        guard rc >= 0, let handle else {
            if let config { snd_config_delete(config) }
            throw BerthError(
                .deviceUnavailable, "cannot open ALSA PCM \"\(settings.device)\" for capture: \(Self.reason(rc))")
        }
        pcm = handle
        self.config = config
        // Fully initialised from here: if configure() throws, deinit closes the PCM (exactly once).
        try configure()
        snd_pcm_nonblock(pcm, 0)
    }

    deinit {
        close()
    }

    private func close() {
        snd_pcm_close(pcm)
        if let config { snd_config_delete(config) }
    }

    private static func loadConfig(_ text: String) throws -> OpaquePointer {
        var top: OpaquePointer?
        var input: OpaquePointer?
        guard snd_config_top(&top) >= 0, let top else { throw BerthError.failed("ALSA: cannot create a configuration") }
        let rc = text.withCString { chars in
            guard snd_input_buffer_open(&input, chars, strlen(chars)) >= 0, let input else { return -ENOMEM }
            defer { snd_input_close(input) }
            return snd_config_load(top, input)
        }
        guard rc >= 0 else {
            snd_config_delete(top)
            throw BerthError.invalidConfig("alsa_config is not valid ALSA configuration: \(reason(rc))")
        }
        return top
    }

    private func configure() throws {
        var params: OpaquePointer?
        guard snd_pcm_hw_params_malloc(&params) >= 0, let params else { throw BerthError.failed("ALSA: out of memory") }
        defer { snd_pcm_hw_params_free(params) }
        let name = "ALSA PCM \"\(device)\""
        let format = settings.format
        try check(snd_pcm_hw_params_any(pcm, params), "\(name) has no usable configuration")
        try check(
            snd_pcm_hw_params_set_access(pcm, params, SND_PCM_ACCESS_RW_INTERLEAVED),
            "\(name) cannot do interleaved reads")
        try check(
            snd_pcm_hw_params_set_format(pcm, params, format.sample.alsa),
            "\(name) does not support format \(format.sample.rawValue)")
        var low: UInt32 = 0
        var high: UInt32 = 0
        snd_pcm_hw_params_get_channels_min(params, &low)
        snd_pcm_hw_params_get_channels_max(params, &high)
        try check(
            snd_pcm_hw_params_set_channels(pcm, params, UInt32(format.channels)),
            "\(name) does not support \(format.channels) channels (it offers \(low)-\(high))")
        var dir: Int32 = 0
        snd_pcm_hw_params_get_rate_min(params, &low, &dir)
        snd_pcm_hw_params_get_rate_max(params, &high, &dir)
        try check(
            snd_pcm_hw_params_set_rate(pcm, params, UInt32(format.sampleRate), 0),
            "\(name) does not support \(format.sampleRate) Hz (it offers \(low)-\(high) Hz)")
        var buffer = settings.bufferUSec
        var period = settings.periodUSec
        try check(
            snd_pcm_hw_params_set_buffer_time_near(pcm, params, &buffer, &dir), "\(name) refuses a \(buffer) µs buffer")
        try check(
            snd_pcm_hw_params_set_period_time_near(pcm, params, &period, &dir), "\(name) refuses a \(period) µs period")
        try check(snd_pcm_hw_params(pcm, params), "\(name) refuses the configuration")
        var frames: snd_pcm_uframes_t = 0
        snd_pcm_hw_params_get_period_size(params, &frames, &dir)
        periodFrames = max(1, Int(frames))
    }

    private func check(_ rc: Int32, _ message: @autoclosure () -> String) throws {
        if rc < 0 { throw BerthError.invalidConfig("\(message()): \(Self.reason(rc))") }
    }

    /// snd_strerror, plus ALSA's own last message on this thread when it said something.
    private static func reason(_ rc: Int32) -> String {
        let text = String(cString: snd_strerror(rc))
        if let detail = AlsaDiagnostics.take(), !detail.isEmpty { return "\(text) (ALSA: \(detail))" }
        return text
    }

    /// Reads up to `frames` interleaved frames into `buffer` (room for `frames * captureFrameBytes`). Blocks
    /// for at most about a period on a hardware device.
    func read(into buffer: UnsafeMutableRawPointer, frames: Int) -> ReadResult {
        while true {
            let n = snd_pcm_readi(pcm, buffer, snd_pcm_uframes_t(frames))
            if n >= 0 { return .frames(Int(n)) }
            let code = Int32(n)
            if code == -EAGAIN { continue }
            AlsaDiagnostics.clear()
            // -EPIPE: overrun; -ESTRPIPE: suspended; -EINTR: a signal. recover() handles all three.
            let recovered = snd_pcm_recover(pcm, code, 1)
            if recovered < 0 {
                return .failed(
                    BerthError(
                        .deviceUnavailable, "capture from ALSA PCM \"\(device)\" failed: \(Self.reason(code))"))
            }
            if code == -EPIPE { return .overrun }
        }
    }
}

extension SampleFormat {
    var alsa: snd_pcm_format_t {
        switch self {
        case .s16le: SND_PCM_FORMAT_S16_LE
        case .s24le: SND_PCM_FORMAT_S24_LE
        case .s24le3: SND_PCM_FORMAT_S24_3LE
        case .s32le: SND_PCM_FORMAT_S32_LE
        }
    }
}
