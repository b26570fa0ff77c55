import BerthKit

/// acoupi's saving filters (`saving:`): after processing, a recording is kept when ANY configured filter passes,
/// and its file deleted otherwise (the row stays, marked). With no filter everything is kept.
struct SavingConfig: Sendable, Equatable {
    /// acoupi's `SaveIfInInterval`: daily windows `HH:MM`–`HH:MM` in the schedule's time zone (`intervals`).
    var intervals: [WindowConfig] = []
    /// acoupi's `FrequencySchedule(duration, frequency)`: keep recordings that start in the first
    /// `duration_minutes` of every `every_minutes`, counted from local midnight in the schedule's time zone
    /// (`frequency: {duration_minutes: 5, every_minutes: 30}`).
    var frequency: Frequency?
    /// Minutes before and after sunrise (`dawn: {before_minutes, after_minutes}`) and sunset (`dusk: ...`) at the
    /// active deployment's position (NOAA solar equations).
    var dawn: SunWindow?
    var dusk: SunWindow?
    /// Keep a recording when a detection scores at least this (`min_score`).
    var minScore: Double?
    /// Delete a recording with detections only once the uplink plugin has nothing about it left to deliver
    /// (`wait_for_uplink`), asked over the bus; and not before `uplink_grace` seconds after its processing ended, the
    /// uplink's time to queue the `Detection` signals.
    var waitForUplink = false
    var uplinkGraceSeconds = 5.0

    struct Frequency: Sendable, Equatable {
        var durationMinutes: Double
        var everyMinutes: Double
    }

    struct SunWindow: Sendable, Equatable {
        var beforeMinutes: Double
        var afterMinutes: Double
    }

    var hasFilters: Bool { !intervals.isEmpty || frequency != nil || dawn != nil || dusk != nil || minScore != nil }
}

extension SavingConfig {
    static func parse(_ r: ConfigReader) throws -> SavingConfig {
        var config = SavingConfig()
        if let node = r.node("intervals") {
            guard case .sequence(let items, _) = node else {
                throw r.error(
                    "intervals", "expected a list of {start: \"HH:MM\", end: \"HH:MM\"}, got \(node.kindName)")
            }
            config.intervals = try items.enumerated().map { position, item in
                let w = try ConfigReader(item, path: "\(r.keyPath("intervals"))[\(position)]")
                let window = WindowConfig(
                    start: try w.required("start", w.nonEmptyString), end: try w.required("end", w.nonEmptyString))
                try w.finish()
                _ = try DailyWindow(start: window.start, end: window.end, key: w.path)
                return window
            }
        }
        if let f = try r.reader("frequency") {
            let duration = try f.required("duration_minutes") { try f.double($0, in: 0.01...1440) }
            let every = try f.required("every_minutes") { try f.double($0, in: 0.01...1440) }
            guard duration <= every else {
                throw f.error("duration_minutes", "\(duration) is longer than every_minutes \(every)")
            }
            try f.finish()
            config.frequency = Frequency(durationMinutes: duration, everyMinutes: every)
        }
        config.dawn = try sunWindow(r, "dawn")
        config.dusk = try sunWindow(r, "dusk")
        config.minScore = try r.double("min_score", in: -1e9...1e9)
        config.waitForUplink = try r.bool("wait_for_uplink") ?? config.waitForUplink
        config.uplinkGraceSeconds = try r.double("uplink_grace", in: 0...3600) ?? config.uplinkGraceSeconds
        try r.finish()
        return config
    }

    private static func sunWindow(_ r: ConfigReader, _ key: String) throws -> SunWindow? {
        guard let w = try r.reader(key) else { return nil }
        let window = SunWindow(
            beforeMinutes: try w.double("before_minutes", in: 0...720) ?? 0,
            afterMinutes: try w.double("after_minutes", in: 0...720) ?? 0)
        try w.finish()
        return window
    }
}
