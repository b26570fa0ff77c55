import BerthKit

/// When the recorder records: daily windows in a time zone, and either recordings of `duration` every `interval`
/// or continuous recording split into segments of `duration`. Pure and I/O-free once built; all instants are
/// microseconds since the epoch (UTC).
///
/// Each local day D and window gives one active period [T(D, start), T(D or D+1, end)), where T maps a wall
/// time to its first occurrence, and a wall time skipped by a clock change to the moment of the change.
/// Overlapping or touching periods merge. Recordings start on the wall-clock grid of multiples of `interval` in the
/// schedule's zone (`alignedStart`: :00, :10, :20 ... for 600 s; a restart never shifts it), and only when the whole
/// recording fits in the period.
struct Schedule: Sendable, Equatable {
    let windows: [DailyWindow]
    let zone: TimeZoneRules
    let durationUSec: Int64
    let intervalUSec: Int64
    let continuous: Bool

    /// A stretch of time in which recording is allowed. `end == nil`: it never ends.
    struct Period: Sendable, Equatable {
        var start: Int64
        var end: Int64?

        func contains(_ t: Int64) -> Bool { t >= start && end.map { t < $0 } ?? true }
    }

    /// One planned recording (or, when continuous, one session to split into segments; `duration == nil`: it
    /// never ends).
    struct Planned: Sendable, Equatable {
        var start: Int64
        var duration: Int64?
    }

    init(windows: [DailyWindow], zone: TimeZoneRules, durationUSec: Int64, intervalUSec: Int64, continuous: Bool) {
        self.windows = windows
        self.zone = zone
        self.durationUSec = durationUSec
        self.intervalUSec = intervalUSec
        self.continuous = continuous
    }

    /// True when the windows leave no gap at all.
    var isAlwaysActive: Bool { windows.contains(where: \.isAllDay) }

    /// Whether `t` falls inside a window.
    func isActive(atUSec t: Int64) -> Bool {
        period(atOrAfterUSec: t)?.contains(t) ?? false
    }

    /// The active period containing `t`, or else the next one to begin.
    func period(atOrAfterUSec t: Int64) -> Period? {
        if isAlwaysActive { return Period(start: .min, end: nil) }
        let day = zone.localDay(atUSec: t)
        let horizon: Int64 = 9
        let periods = merged(fromDay: day - 1, toDay: day + horizon)
        guard let index = periods.firstIndex(where: { $0.end! > t }) else { return nil }
        // One period covering the whole horizon: windows that together cover every day.
        if periods.count == 1, periods[0].start <= t, horizonCovered(periods[0], day: day, horizon: horizon) {
            return Period(start: .min, end: nil)
        }
        return periods[index]
    }

    /// The next recording starting at or after `t`. When continuous: the session to record from `t` (or from the
    /// next window start) to the end of its window.
    func nextRecording(afterUSec t: Int64) -> Planned? {
        if continuous {
            guard let period = period(atOrAfterUSec: t) else { return nil }
            let start = max(t, period.start)
            return Planned(start: start, duration: period.end.map { $0 - start })
        }
        var from = t
        // Each pass moves past one period too short for a recording; windows are validated to be long enough,
        // so only days shortened by a clock change cost a pass.
        for _ in 0..<64 {
            guard let period = period(atOrAfterUSec: from) else { return nil }
            let start = alignedStart(max(from, period.start))
            guard let end = period.end else { return Planned(start: start, duration: durationUSec) }
            if start + durationUSec <= end { return Planned(start: start, duration: durationUSec) }
            from = end
        }
        return nil
    }

    /// The first start at or after `t` on the wall-clock grid of `interval` in the schedule's zone: multiples of
    /// the interval since local midnight of the epoch, so an interval of 600 s starts at :00, :10, :20 ... local
    /// time (acoupi's `aligned_schedule`) also in zones whose offset is not a whole hour (Asia/Kathmandu,
    /// +05:45). In UTC and whole-hour zones that is the plain epoch grid; a restart never shifts it.
    func alignedStart(_ t: Int64) -> Int64 {
        let offset = Int64(zone.utcOffset(atUSec: t)) * 1_000_000
        return ceilToMultiple(t + offset, of: intervalUSec) - offset
    }

    // MARK: Periods

    /// The periods of local days `first...last`, sorted and merged.
    func merged(fromDay first: Int64, toDay last: Int64) -> [Period] {
        var raw: [(Int64, Int64)] = []
        for day in first...last {
            for window in windows where !window.isAllDay {
                let start = zone.instant(localDay: day, secondOfDay: window.startMinute * 60)
                let endDay = window.spansMidnight || window.endMinute == 0 ? day + 1 : day
                let end = zone.instant(localDay: endDay, secondOfDay: window.endMinute * 60)
                if end > start { raw.append((start * 1_000_000, end * 1_000_000)) }
            }
        }
        raw.sort { $0.0 < $1.0 }
        var result: [Period] = []
        for (start, end) in raw {
            if let last = result.last, start <= last.end! {
                result[result.count - 1].end = max(last.end!, end)
            } else {
                result.append(Period(start: start, end: end))
            }
        }
        return result
    }

    private func horizonCovered(_ period: Period, day: Int64, horizon: Int64) -> Bool {
        let firstMidnight = zone.instant(localDay: day - 1, secondOfDay: 0) * 1_000_000
        let lastMidnight = zone.instant(localDay: day + horizon, secondOfDay: 0) * 1_000_000
        return period.start <= firstMidnight && period.end! >= lastMidnight
    }
}

extension Schedule {
    /// Builds and validates a schedule from its config; every problem is an `.invalidConfig` naming the key.
    init(config: ScheduleConfig, zoneDirectory: String = TimeZoneRules.defaultDirectory) throws {
        let zone = try TimeZoneRules(named: config.timezone, directory: zoneDirectory)
        guard !config.windows.isEmpty else {
            throw BerthError.invalidConfig("schedule.windows is empty: the recorder would never record")
        }
        guard config.duration.isFinite, config.duration >= 0.01, config.duration <= 86400 else {
            throw BerthError.invalidConfig(
                "schedule.duration \(config.duration) must be between 0.01 and 86400 seconds")
        }
        if !config.continuous {
            guard config.interval.isFinite, config.interval >= config.duration, config.interval <= 86400 else {
                throw BerthError.invalidConfig(
                    "schedule.interval \(config.interval) must be at least schedule.duration (\(config.duration)) "
                        + "and at most 86400 seconds")
            }
        }
        var windows: [DailyWindow] = []
        for (index, window) in config.windows.enumerated() {
            let parsed = try DailyWindow(start: window.start, end: window.end, key: "schedule.windows[\(index)]")
            if !config.continuous, !parsed.isAllDay, Double(parsed.lengthMinutes * 60) < config.duration {
                throw BerthError.invalidConfig(
                    "schedule.windows[\(index)] \(parsed) is shorter than schedule.duration (\(config.duration) s)")
            }
            windows.append(parsed)
        }
        self.init(
            windows: windows, zone: zone, durationUSec: Int64((config.duration * 1e6).rounded()),
            intervalUSec: Int64((config.interval * 1e6).rounded()), continuous: config.continuous)
    }
}
