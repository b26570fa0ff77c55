import BerthKit

/// acoupi's saving filters as one decision: a recording is kept when ANY configured filter passes (with none, every
/// recording is kept), judged at the recording's start. Pure: the zone, the position and the detections' best score
/// are given.
struct SavingPolicy: Sendable {
    let config: SavingConfig
    /// The schedule's time zone: intervals and frequency windows are wall-clock times there.
    let zone: TimeZoneRules
    private let intervals: Schedule?

    struct Decision: Sendable, Equatable {
        var keep: Bool
        /// Which filter passed, or that none did.
        var reason: String
    }

    init(config: SavingConfig, zone: TimeZoneRules) throws {
        self.config = config
        self.zone = zone
        if config.intervals.isEmpty {
            intervals = nil
        } else {
            let windows = try config.intervals.enumerated().map { index, w in
                try DailyWindow(start: w.start, end: w.end, key: "saving.intervals[\(index)]")
            }
            intervals = Schedule(windows: windows, zone: zone, durationUSec: 1, intervalUSec: 1, continuous: true)
        }
    }

    /// The decision for a recording that started at `startUSec`, with the best detection score of its processors
    /// (nil: none), at `position` (the deployment's latitude and longitude; nil: no deployment, so dawn and dusk
    /// cannot pass).
    func decide(startUSec t: Int64, bestScore: Double?, position: (latitude: Double, longitude: Double)?) -> Decision {
        guard config.hasFilters else { return Decision(keep: true, reason: "no saving filter") }
        if let intervals, intervals.isActive(atUSec: t) {
            let text = config.intervals.map { "\($0.start)-\($0.end)" }.joined(separator: ", ")
            return Decision(keep: true, reason: "in a saving interval (\(text) \(zone.name))")
        }
        if let f = config.frequency {
            let midnight = zone.instant(localDay: zone.localDay(atUSec: t), secondOfDay: 0) * 1_000_000
            let every = Int64((f.everyMinutes * 60e6).rounded())
            let duration = Int64((f.durationMinutes * 60e6).rounded())
            if every > 0, (t - midnight) % every < duration {
                return Decision(
                    keep: true, reason: "in the first \(f.durationMinutes) min of every \(f.everyMinutes) min")
            }
        }
        if let position {
            let days = SolarCalculator.events(around: t, latitude: position.latitude, longitude: position.longitude)
            for case .riseAndSet(let sunrise, let sunset) in days {
                if let dawn = config.dawn, Self.within(t, sunrise, dawn) {
                    return Decision(keep: true, reason: "at dawn (sunrise \(MetadataStore.text(sunrise)) UTC)")
                }
                if let dusk = config.dusk, Self.within(t, sunset, dusk) {
                    return Decision(keep: true, reason: "at dusk (sunset \(MetadataStore.text(sunset)) UTC)")
                }
            }
        }
        if let minimum = config.minScore, let best = bestScore, best >= minimum {
            return Decision(keep: true, reason: "a detection scored \(best), at least min_score \(minimum)")
        }
        return Decision(keep: false, reason: "saving filters: none passed (\(filterNames))")
    }

    private static func within(_ t: Int64, _ event: Int64, _ window: SavingConfig.SunWindow) -> Bool {
        t >= event - Int64(window.beforeMinutes * 60e6) && t <= event + Int64(window.afterMinutes * 60e6)
    }

    /// The configured filters, for reasons: "intervals, frequency, dawn, dusk, min_score 0.5".
    var filterNames: String {
        var names: [String] = []
        if !config.intervals.isEmpty { names.append("intervals") }
        if config.frequency != nil { names.append("frequency") }
        if config.dawn != nil { names.append("dawn") }
        if config.dusk != nil { names.append("dusk") }
        if let s = config.minScore { names.append("min_score \(s)") }
        return names.joined(separator: ", ")
    }
}
