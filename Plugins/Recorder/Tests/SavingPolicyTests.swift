import BerthKit
import Testing

@testable import RecorderPlugin

/// The NOAA solar equations against published sunrise and sunset tables, and the saving filters' decisions.
@Suite struct SavingPolicyTests {
    /// Microseconds of `YYYY-MM-DD HH:MM` UTC.
    static func utc(_ y: Int, _ mo: Int, _ d: Int, _ h: Int = 0, _ mi: Int = 0) -> Int64 {
        CivilDate(year: y, month: mo, day: d).dayNumber * 86_400_000_000 + Int64(h * 3600 + mi * 60) * 1_000_000
    }

    static func day(_ y: Int, _ mo: Int, _ d: Int) -> Int64 { CivilDate(year: y, month: mo, day: d).dayNumber }

    /// Published times (whattime.city's tables of the 1st of each month, given to the minute in local time; here in
    /// UTC), to within three minutes (tables differ by a minute or two with the point of the city they use): London 51.51 N 0.13 W, Sydney 33.87 S 151.21 E (its local June 1 sunrise is May 31 UTC).
    @Test(arguments: [
        ("London Jan 1", 51.51, -0.13, day(2026, 1, 1), utc(2026, 1, 1, 8, 7), utc(2026, 1, 1, 16, 1)),
        ("London Jun 1", 51.51, -0.13, day(2026, 6, 1), utc(2026, 6, 1, 3, 51), utc(2026, 6, 1, 20, 7)),
        ("London Dec 1", 51.51, -0.13, day(2026, 12, 1), utc(2026, 12, 1, 7, 43), utc(2026, 12, 1, 15, 57)),
        ("Sydney Jan 1", -33.87, 151.21, day(2026, 1, 1), utc(2025, 12, 31, 18, 48), utc(2026, 1, 1, 9, 10)),
        ("Sydney Jun 1", -33.87, 151.21, day(2026, 6, 1), utc(2026, 5, 31, 20, 52), utc(2026, 6, 1, 6, 55)),
    ])
    func sunriseAndSunsetMatchPublishedTables(
        place: String, latitude: Double, longitude: Double, day: Int64, sunrise: Int64, sunset: Int64
    ) {
        guard
            case .riseAndSet(let rise, let set) = SolarCalculator.events(
                utcDay: day, latitude: latitude, longitude: longitude)
        else {
            Issue.record("\(place): no sunrise computed")
            return
        }
        #expect(abs(rise - sunrise) <= 180_000_000, "\(place) sunrise off by \(Double(rise - sunrise) / 60e6) min")
        #expect(abs(set - sunset) <= 180_000_000, "\(place) sunset off by \(Double(set - sunset) / 60e6) min")
    }

    /// London's longest day, 2021-06-21, was 16 h 38 min 33 s long (published).
    @Test func londonsLongestDay() {
        guard
            case .riseAndSet(let rise, let set) = SolarCalculator.events(
                utcDay: Self.day(2021, 6, 21), latitude: 51.5074, longitude: -0.1278)
        else { return #expect(Bool(false)) }
        #expect(abs((set - rise) - Int64((16 * 3600 + 38 * 60 + 33) * 1e6)) <= 60_000_000)
    }

    /// Tromsø (69.65 N) has midnight sun from about May 20 to July 22 and polar night from about November 27 to
    /// January 15; McMurdo (77.85 S) the reverse; Longyearbyen (78.22 N) midnight sun from about April 20.
    @Test func polarDayAndNight() {
        let cases: [(String, Double, Double, Int64, SolarCalculator.Events)] = [
            ("Tromsø midsummer", 69.65, 18.96, Self.day(2026, 6, 21), .polarDay),
            ("Tromsø midwinter", 69.65, 18.96, Self.day(2026, 12, 21), .polarNight),
            ("McMurdo December", -77.85, 166.67, Self.day(2026, 12, 21), .polarDay),
            ("McMurdo June", -77.85, 166.67, Self.day(2026, 6, 21), .polarNight),
            ("Longyearbyen May", 78.22, 15.65, Self.day(2026, 5, 1), .polarDay),
            ("North Pole June", 90, 0, Self.day(2026, 6, 1), .polarDay),
            ("South Pole June", -90, 0, Self.day(2026, 6, 1), .polarNight),
        ]
        for (place, lat, lon, day, expected) in cases {
            #expect(SolarCalculator.events(utcDay: day, latitude: lat, longitude: lon) == expected, "\(place)")
        }
        // Tromsø in March has a normal day.
        if case .riseAndSet = SolarCalculator.events(utcDay: Self.day(2026, 3, 20), latitude: 69.65, longitude: 18.96) {
        } else {
            Issue.record("Tromsø in March: no sunrise")
        }
    }

    static func policy(_ configure: (inout SavingConfig) -> Void, zone: String = "UTC") throws -> SavingPolicy {
        var config = SavingConfig()
        configure(&config)
        return try SavingPolicy(config: config, zone: TimeZoneRules(named: zone))
    }

    @Test func noFilterKeepsEverything() throws {
        let p = try Self.policy { _ in }
        #expect(p.decide(startUSec: 0, bestScore: nil, position: nil) == .init(keep: true, reason: "no saving filter"))
    }

    /// acoupi's SaveIfInInterval, in the schedule's zone (Europe/Berlin is UTC+1 in January).
    @Test func intervalsAreWallClockInTheScheduleZone() throws {
        let p = try Self.policy({ $0.intervals = [WindowConfig(start: "06:00", end: "08:00")] }, zone: "Europe/Berlin")
        #expect(p.decide(startUSec: Self.utc(2026, 1, 5, 5, 0), bestScore: nil, position: nil).keep)  // 06:00 local
        #expect(p.decide(startUSec: Self.utc(2026, 1, 5, 6, 59), bestScore: nil, position: nil).keep)
        #expect(!p.decide(startUSec: Self.utc(2026, 1, 5, 7, 0), bestScore: nil, position: nil).keep)  // 08:00 local
        #expect(!p.decide(startUSec: Self.utc(2026, 1, 5, 4, 59), bestScore: nil, position: nil).keep)
        let overnight = try Self.policy { $0.intervals = [WindowConfig(start: "22:00", end: "02:00")] }
        #expect(overnight.decide(startUSec: Self.utc(2026, 1, 5, 23, 30), bestScore: nil, position: nil).keep)
        #expect(overnight.decide(startUSec: Self.utc(2026, 1, 6, 1, 30), bestScore: nil, position: nil).keep)
        #expect(!overnight.decide(startUSec: Self.utc(2026, 1, 6, 2, 30), bestScore: nil, position: nil).keep)
    }

    /// acoupi's FrequencySchedule(duration=5, frequency=30): the first 5 minutes of every 30.
    @Test func frequencyKeepsTheFirstMinutesOfEachPeriod() throws {
        let p = try Self.policy { $0.frequency = .init(durationMinutes: 5, everyMinutes: 30) }
        for (minute, keep) in [(0, true), (4, true), (5, false), (29, false), (30, true), (34, true), (35, false)] {
            let decision = p.decide(startUSec: Self.utc(2026, 3, 2, 10, minute), bestScore: nil, position: nil)
            #expect(decision.keep == keep, "10:\(minute)")
        }
        #expect(
            p.decide(startUSec: Self.utc(2026, 3, 2, 10, 40), bestScore: nil, position: nil).reason
                == "saving filters: none passed (frequency)")
    }

    @Test func dawnAndDuskAroundTheDeploymentsSunriseAndSunset() throws {
        let p = try Self.policy {
            $0.dawn = .init(beforeMinutes: 30, afterMinutes: 60)
            $0.dusk = .init(beforeMinutes: 10, afterMinutes: 0)
        }
        let london = (latitude: 51.51, longitude: -0.13)
        let sunrise = Self.utc(2026, 6, 1, 3, 51)  // published, ±2 min
        let sunset = Self.utc(2026, 6, 1, 20, 7)
        let minute: Int64 = 60_000_000
        #expect(p.decide(startUSec: sunrise - 25 * minute, bestScore: nil, position: london).keep)
        #expect(p.decide(startUSec: sunrise + 55 * minute, bestScore: nil, position: london).keep)
        #expect(!p.decide(startUSec: sunrise - 35 * minute, bestScore: nil, position: london).keep)
        #expect(!p.decide(startUSec: sunrise + 65 * minute, bestScore: nil, position: london).keep)
        #expect(p.decide(startUSec: sunset - 5 * minute, bestScore: nil, position: london).reason.hasPrefix("at dusk"))
        #expect(!p.decide(startUSec: sunset + 5 * minute, bestScore: nil, position: london).keep)
        #expect(!p.decide(startUSec: sunset - 15 * minute, bestScore: nil, position: london).keep)
        // Without a deployment there is no position: dawn and dusk cannot pass.
        #expect(!p.decide(startUSec: sunrise, bestScore: nil, position: nil).keep)
        // Polar night in Tromsø: no dawn at all.
        let tromso = (latitude: 69.65, longitude: 18.96)
        for hour in 0..<24 {
            #expect(!p.decide(startUSec: Self.utc(2026, 12, 21, hour), bestScore: nil, position: tromso).keep)
        }
    }

    @Test func minScoreAndAnyFilterPassing() throws {
        let p = try Self.policy {
            $0.minScore = 0.5
            $0.intervals = [WindowConfig(start: "06:00", end: "07:00")]
        }
        let night = Self.utc(2026, 1, 1, 2, 0)
        #expect(p.decide(startUSec: night, bestScore: 0.5, position: nil).keep)
        #expect(!p.decide(startUSec: night, bestScore: 0.49, position: nil).keep)
        #expect(!p.decide(startUSec: night, bestScore: nil, position: nil).keep)
        #expect(p.decide(startUSec: Self.utc(2026, 1, 1, 6, 30), bestScore: nil, position: nil).keep)
    }

    /// The `saving:` and `processing:` sections: strict, with the key named.
    @Test func configSectionsAreStrict() throws {
        func parse(_ yaml: String) throws -> RecorderConfig {
            let node = try YAMLParser.parse(yaml, file: "berth.yaml")
            return try RecorderConfig.parse(node?["recorder"], defaultStorage: "/tmp/x")
        }
        let good = try parse(
            """
            recorder:
              processing:
                concurrency: 2
                processors:
                  - name: birdnet
                    command: [birdnet-analyze, --min_conf, "0.5"]
                    timeout: 120
              saving:
                intervals: [{start: "05:00", end: "09:00"}]
                frequency: {duration_minutes: 5, every_minutes: 30}
                dawn: {before_minutes: 30, after_minutes: 30}
                min_score: 0.7
                wait_for_uplink: true
                uplink_grace: 2
            """)
        #expect(good.processing.processors.map(\.command) == [["birdnet-analyze", "--min_conf", "0.5"]])
        #expect(good.processing.concurrency == 2 && good.processing.processors.first?.timeoutSeconds == 120)
        #expect(good.saving.hasFilters && good.saving.minScore == 0.7 && good.saving.dusk == nil)
        #expect(good.saving.waitForUplink && good.saving.uplinkGraceSeconds == 2)
        for (yaml, text) in [
            ("recorder:\n  saving:\n    min_scor: 1\n", "min_scor"),
            ("recorder:\n  saving:\n    intervals: [{start: \"25:00\", end: \"01:00\"}]\n", "25:00"),
            (
                "recorder:\n  saving:\n    frequency: {duration_minutes: 40, every_minutes: 30}\n",
                "longer than every_minutes"
            ),
            ("recorder:\n  processing:\n    processors: [{name: \"a b\", command: [x]}]\n", "must be 1 to 64"),
            ("recorder:\n  processing:\n    processors: [{name: a, command: []}]\n", "command"),
            (
                "recorder:\n  processing:\n    processors: [{name: a, command: [x]}, {name: a, command: [y]}]\n",
                "used twice"
            ),
        ] {
            let error = #expect(throws: BerthError.self) { try parse(yaml) }
            #expect(error?.code == .invalidConfig)
            #expect(error?.message.contains(text) == true, "\(error?.message ?? "")")
        }
    }
}
