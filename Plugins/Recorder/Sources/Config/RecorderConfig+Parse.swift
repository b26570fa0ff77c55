import BerthKit

extension RecorderConfig {
    /// Reads the strict `recorder:` section (nil when absent: every default). Every error is `.invalidConfig` in
    /// the form `FILE:LINE: recorder.KEY: problem`; an unknown key is an error. `storage` defaults to
    /// `defaultStorage` (the plugin's state folder).
    static func parse(_ node: ConfigNode?, defaultStorage: String, path: String = "recorder") throws -> RecorderConfig {
        var config = RecorderConfig()
        config.storagePath = defaultStorage
        guard let node else { return config }
        let r = try ConfigReader(node, path: path)
        config.device = try r.nonEmptyString("device") ?? config.device
        config.alsaConfig = try r.nonEmptyString("alsa_config")
        config.sampleRate = try r.int("sample_rate", in: 1000...768_000) ?? config.sampleRate
        config.channels = try r.int("channels", in: 1...64) ?? config.channels
        config.format = try r.oneOf("format", SampleFormat.allCases.map(\.rawValue)) ?? config.format
        config.periodSeconds = try r.double("period_seconds", in: 0.001...10) ?? config.periodSeconds
        config.bufferSeconds = try r.double("buffer_seconds", in: 0.002...60) ?? config.bufferSeconds
        if let storage = try r.nonEmptyString("storage") {
            guard storage.hasPrefix("/") else { throw r.error("storage", "\"\(storage)\" is not an absolute path") }
            config.storagePath = storage
        }
        config.fileTimeZone = try r.nonEmptyString("file_timezone") ?? config.fileTimeZone
        if let schedule = try r.reader("schedule") { config.schedule = try ScheduleConfig.parse(schedule) }
        config.minFreeBytes = try r.byteSize("min_free_bytes") ?? config.minFreeBytes
        if let policy = try r.oneOf("low_disk_policy", LowDiskPolicy.allCases.map(\.rawValue)) {
            config.lowDiskPolicy = LowDiskPolicy(rawValue: policy)!
        }
        config.heartbeatInterval = try r.double("heartbeat_interval", in: 0.05...86400) ?? config.heartbeatInterval
        config.recoveryMinSeconds = try r.double("recovery_min_seconds", in: 0...86400) ?? config.recoveryMinSeconds
        config.retryInitialSeconds = try r.double("retry_initial", in: 0.001...86400) ?? config.retryInitialSeconds
        config.retryMaxSeconds = try r.double("retry_max", in: 0.001...86400) ?? config.retryMaxSeconds
        config.paceRealtime = try r.bool("pace_realtime") ?? config.paceRealtime
        config.waitForWriter = try r.bool("wait_for_writer") ?? config.waitForWriter
        if let processing = try r.reader("processing") { config.processing = try ProcessingConfig.parse(processing) }
        if let saving = try r.reader("saving") { config.saving = try SavingConfig.parse(saving) }
        config.rescanIntervalSeconds = try r.double("rescan_interval", in: 1...86400) ?? config.rescanIntervalSeconds
        try r.finish()
        // What the typed accessors cannot see (time zones, schedule windows, contradicting values), at the
        // section's line.
        let problems = config.problems()
        if !problems.isEmpty {
            throw BerthError.invalidConfig(at: r.mark, path: path, problems.joined(separator: "; "))
        }
        return config
    }
}

extension ScheduleConfig {
    static func parse(_ r: ConfigReader) throws -> ScheduleConfig {
        var schedule = ScheduleConfig()
        if let node = r.node("windows"), case .sequence(let items, _) = node {
            schedule.windows = try items.enumerated().map { position, item in
                let w = try ConfigReader(item, path: "\(r.keyPath("windows"))[\(position)]")
                let window = WindowConfig(
                    start: try w.required("start", w.nonEmptyString), end: try w.required("end", w.nonEmptyString))
                try w.finish()
                return window
            }
        } else if let node = r.node("windows"), !Self.isNull(node) {
            throw r.error("windows", "expected a list of {start: \"HH:MM\", end: \"HH:MM\"}, got \(node.kindName)")
        }
        schedule.timezone = try r.nonEmptyString("timezone") ?? schedule.timezone
        schedule.duration = try r.double("duration", in: 0.001...86400) ?? schedule.duration
        schedule.interval = try r.double("interval", in: 0.001...86400) ?? schedule.interval
        schedule.continuous = try r.bool("continuous") ?? schedule.continuous
        try r.finish()
        return schedule
    }

    private static func isNull(_ node: ConfigNode) -> Bool {
        if case .null = node { return true }
        return false
    }
}
