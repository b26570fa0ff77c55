import BerthKit

/// A config that passed validation, with its parts built: what the engine runs on.
struct ResolvedRecorderConfig: Sendable {
    let config: RecorderConfig
    let format: AudioFormat
    let schedule: Schedule
    let layout: RecordingLayout
    let capture: CaptureSettings

    /// Frames per recording (or per segment when continuous).
    var segmentFrames: Int64 { format.frames(usec: schedule.durationUSec) }
}

extension RecorderConfig {
    /// Every problem in the config, each a sentence naming the key and quoting the value. Empty when valid.
    func problems(zoneDirectory: String = TimeZoneRules.defaultDirectory) -> [String] {
        var problems: [String] = []
        if device.isEmpty { problems.append("device is empty: name an ALSA PCM such as \"default\" or \"hw:1,0\"") }
        if !(1000...768_000).contains(sampleRate) {
            problems.append("sample_rate \(sampleRate) must be between 1000 and 768000 Hz")
        }
        if !(1...64).contains(channels) { problems.append("channels \(channels) must be between 1 and 64") }
        if SampleFormat(name: format) == nil {
            problems.append("format \"\(format)\" is not one of \(SampleFormat.names)")
        }
        if !(periodSeconds.isFinite && periodSeconds >= 0.001 && periodSeconds <= 10) {
            problems.append("period_seconds \(periodSeconds) must be between 0.001 and 10")
        }
        if !(bufferSeconds.isFinite && bufferSeconds >= 2 * periodSeconds && bufferSeconds <= 60) {
            problems.append("buffer_seconds \(bufferSeconds) must be at least twice period_seconds and at most 60")
        }
        if storagePath.isEmpty || !storagePath.hasPrefix("/") {
            problems.append("storage \"\(storagePath)\" must be an absolute folder path")
        }
        do { _ = try TimeZoneRules(named: fileTimeZone, directory: zoneDirectory) } catch {
            problems.append("file_timezone: \(BerthError.wrapping(error).message)")
        }
        do { _ = try Schedule(config: schedule, zoneDirectory: zoneDirectory) } catch {
            problems.append(BerthError.wrapping(error).message)
        }
        if !(heartbeatInterval.isFinite && heartbeatInterval >= 0.05 && heartbeatInterval <= 86400) {
            problems.append("heartbeat_interval \(heartbeatInterval) must be between 0.05 and 86400 seconds")
        }
        if !(recoveryMinSeconds.isFinite && recoveryMinSeconds >= 0) {
            problems.append("recovery_min_seconds \(recoveryMinSeconds) must be 0 or more")
        }
        if !(retryInitialSeconds.isFinite && retryInitialSeconds > 0 && retryMaxSeconds.isFinite
            && retryMaxSeconds >= retryInitialSeconds)
        {
            problems.append(
                "retry_initial \(retryInitialSeconds) must be above 0 and retry_max \(retryMaxSeconds) at least as large"
            )
        }
        return problems
    }

    /// Throws `.invalidConfig` listing every problem.
    func validate(zoneDirectory: String = TimeZoneRules.defaultDirectory) throws {
        let problems = problems(zoneDirectory: zoneDirectory)
        if !problems.isEmpty {
            throw BerthError.invalidConfig("recorder configuration: " + problems.joined(separator: "; "))
        }
    }

    /// Validates and builds the parts.
    func resolved(zoneDirectory: String = TimeZoneRules.defaultDirectory) throws -> ResolvedRecorderConfig {
        try validate(zoneDirectory: zoneDirectory)
        let format = AudioFormat(sampleRate: sampleRate, channels: channels, sample: SampleFormat(name: format)!)
        let layout = RecordingLayout(
            storage: storagePath, fileZone: try TimeZoneRules(named: fileTimeZone, directory: zoneDirectory))
        let capture = CaptureSettings(
            device: device, alsaConfig: alsaConfig, format: format, periodUSec: UInt32(periodSeconds * 1e6),
            bufferUSec: UInt32(bufferSeconds * 1e6), waitForWriter: waitForWriter)
        return ResolvedRecorderConfig(
            config: self, format: format, schedule: try Schedule(config: schedule, zoneDirectory: zoneDirectory),
            layout: layout, capture: capture)
    }
}
