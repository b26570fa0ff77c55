import BerthKit
import Testing

@testable import RecorderPlugin

/// Microseconds since the epoch of a UTC wall time.
func utc(_ y: Int, _ mo: Int, _ d: Int, _ h: Int = 0, _ mi: Int = 0, _ s: Int = 0) -> Int64 {
    (CivilDate(year: y, month: mo, day: d).dayNumber * 86400 + Int64(h * 3600 + mi * 60 + s)) * 1_000_000
}

private func schedule(
    _ windows: [(String, String)], zone: String = "UTC", duration: Double = 3, interval: Double = 10,
    continuous: Bool = false
) throws -> Schedule {
    try Schedule(
        config: ScheduleConfig(
            windows: windows.map { WindowConfig(start: $0.0, end: $0.1) }, timezone: zone, duration: duration,
            interval: interval, continuous: continuous))
}

private let hour: Int64 = 3_600_000_000

@Suite struct ScheduleTests {
    @Test func dailyWindowRecordsOnTheIntervalGrid() throws {
        let s = try schedule([("06:00", "18:00")])
        #expect(
            s.nextRecording(afterUSec: utc(2026, 1, 1, 5, 59, 58))
                == .init(start: utc(2026, 1, 1, 6), duration: 3_000_000))
        #expect(s.nextRecording(afterUSec: utc(2026, 1, 1, 6, 0, 1))?.start == utc(2026, 1, 1, 6, 0, 10))
        #expect(s.nextRecording(afterUSec: utc(2026, 1, 1, 6, 0, 10))?.start == utc(2026, 1, 1, 6, 0, 10))
        #expect(s.nextRecording(afterUSec: utc(2026, 1, 1, 17, 59, 45))?.start == utc(2026, 1, 1, 17, 59, 50))
        // 17:59:57 + 3 s would be past 18:00: the next one is the next morning.
        #expect(s.nextRecording(afterUSec: utc(2026, 1, 1, 17, 59, 51))?.start == utc(2026, 1, 2, 6))
        #expect(s.isActive(atUSec: utc(2026, 1, 1, 6)))
        #expect(s.isActive(atUSec: utc(2026, 1, 1, 17, 59, 59)))
        #expect(!s.isActive(atUSec: utc(2026, 1, 1, 18)))
        #expect(!s.isActive(atUSec: utc(2026, 1, 1, 5, 59, 59)))
    }

    /// acoupi's aligned_schedule: every 10 minutes on :00, :10, :20 ... of the local clock, also where the offset is
    /// not a whole hour (Kathmandu is UTC+05:45; an epoch grid would start at :05, :15 ... there).
    @Test func recordingsAlignToTheLocalWallClock() throws {
        for zone in ["UTC", "Europe/Berlin", "Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns"] {
            let s = try schedule([("00:00", "00:00")], zone: zone, duration: 60, interval: 600)
            let rules = try TimeZoneRules(named: zone)
            var t = utc(2026, 3, 28, 20, 1, 7)  // through Europe's and Newfoundland's spring change
            for _ in 0..<300 {
                let next = try #require(s.nextRecording(afterUSec: t)).start
                let local = rules.civil(atUSec: next)
                #expect(local.minute % 10 == 0 && local.second == 0 && next % 1_000_000 == 0, "\(zone): \(local)")
                #expect(next >= t && next - t <= 600_000_000, "\(zone)")
                t = next + 1
            }
        }
    }

    @Test func overnightWindowSpansMidnight() throws {
        let s = try schedule([("22:00", "04:00")])
        #expect(s.isActive(atUSec: utc(2026, 6, 1, 22)))
        #expect(s.isActive(atUSec: utc(2026, 6, 1, 23, 30)))
        #expect(s.isActive(atUSec: utc(2026, 6, 2, 3, 59, 59)))
        #expect(!s.isActive(atUSec: utc(2026, 6, 2, 4)))
        #expect(!s.isActive(atUSec: utc(2026, 6, 2, 12)))
        #expect(
            s.period(atOrAfterUSec: utc(2026, 6, 2, 12)) == .init(start: utc(2026, 6, 2, 22), end: utc(2026, 6, 3, 4)))
        #expect(
            s.period(atOrAfterUSec: utc(2026, 6, 2, 1)) == .init(start: utc(2026, 6, 1, 22), end: utc(2026, 6, 2, 4)))
        #expect(s.nextRecording(afterUSec: utc(2026, 6, 2, 12))?.start == utc(2026, 6, 2, 22))
    }

    @Test func wholeDayWhenEndEqualsStart() throws {
        let s = try schedule([("07:30", "07:30")])
        #expect(s.isAlwaysActive)
        #expect(s.isActive(atUSec: utc(2026, 3, 29, 2, 30)))
        #expect(s.nextRecording(afterUSec: utc(2026, 1, 1, 7, 29, 59) + 1)?.start == utc(2026, 1, 1, 7, 30))
        // Windows that together cover the day are whole days too.
        let halves = try schedule([("00:00", "12:00"), ("12:00", "00:00")])
        #expect(halves.period(atOrAfterUSec: utc(2026, 5, 5, 12)) == .init(start: .min, end: nil))
    }

    @Test func touchingWindowsMerge() throws {
        let s = try schedule([("12:00", "18:00"), ("06:00", "12:00")])
        #expect(s.period(atOrAfterUSec: utc(2026, 2, 2)) == .init(start: utc(2026, 2, 2, 6), end: utc(2026, 2, 2, 18)))
        #expect(s.nextRecording(afterUSec: utc(2026, 2, 2, 11, 59, 55))?.start == utc(2026, 2, 2, 12))
    }

    @Test func timeZoneShiftsTheWindows() throws {
        let s = try schedule([("06:00", "18:00")], zone: "Europe/Berlin")
        // Winter: CET = UTC+1.
        #expect(
            s.period(atOrAfterUSec: utc(2026, 1, 15)) == .init(start: utc(2026, 1, 15, 5), end: utc(2026, 1, 15, 17)))
        // Summer: CEST = UTC+2.
        #expect(
            s.period(atOrAfterUSec: utc(2026, 7, 15)) == .init(start: utc(2026, 7, 15, 4), end: utc(2026, 7, 15, 16)))
    }

    @Test func springForwardNightIsAnHourShorter() throws {
        // Europe/Berlin 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00 UTC).
        let night = try schedule([("22:00", "04:00")], zone: "Europe/Berlin")
        let p = try #require(night.period(atOrAfterUSec: utc(2026, 3, 28, 12)))
        #expect(p == .init(start: utc(2026, 3, 28, 21), end: utc(2026, 3, 29, 2)))
        #expect(p.end! - p.start == 5 * hour)
        // A window starting in the skipped hour starts when the clocks change.
        let gap = try schedule([("02:30", "03:30")], zone: "Europe/Berlin")
        #expect(
            gap.period(atOrAfterUSec: utc(2026, 3, 28, 12))
                == .init(start: utc(2026, 3, 29, 1), end: utc(2026, 3, 29, 1, 30)))
        #expect(!gap.isActive(atUSec: utc(2026, 3, 29, 0, 59, 59)))
        #expect(gap.isActive(atUSec: utc(2026, 3, 29, 1)))
        // The day before and after are normal (CET then CEST).
        #expect(gap.period(atOrAfterUSec: utc(2026, 3, 27, 12))?.start == utc(2026, 3, 28, 1, 30))
        #expect(gap.period(atOrAfterUSec: utc(2026, 3, 29, 12))?.start == utc(2026, 3, 30, 0, 30))
    }

    @Test func fallBackNightIsAnHourLonger() throws {
        // Europe/Berlin 2026-10-25: 03:00 CEST becomes 02:00 CET (01:00 UTC); 02:00-03:00 happens twice.
        let night = try schedule([("22:00", "04:00")], zone: "Europe/Berlin")
        let p = try #require(night.period(atOrAfterUSec: utc(2026, 10, 24, 12)))
        #expect(p == .init(start: utc(2026, 10, 24, 20), end: utc(2026, 10, 25, 3)))
        #expect(p.end! - p.start == 7 * hour)
        // A repeated wall time means its first occurrence.
        let twice = try schedule([("02:30", "03:30")], zone: "Europe/Berlin")
        #expect(
            twice.period(atOrAfterUSec: utc(2026, 10, 24, 12))
                == .init(start: utc(2026, 10, 25, 0, 30), end: utc(2026, 10, 25, 2, 30)))
        // Recordings keep the 10 s grid straight through the change.
        let all = try schedule([("00:00", "00:00")], zone: "Europe/Berlin")
        #expect(all.nextRecording(afterUSec: utc(2026, 10, 25, 0, 59, 55))?.start == utc(2026, 10, 25, 1))
    }

    @Test func continuousSessionsRunToTheWindowEnd() throws {
        let s = try schedule([("22:00", "04:00")], duration: 60, continuous: true)
        #expect(
            s.nextRecording(afterUSec: utc(2026, 6, 1, 23, 0, 0, ) + 123)
                == .init(start: utc(2026, 6, 1, 23) + 123, duration: utc(2026, 6, 2, 4) - utc(2026, 6, 1, 23) - 123))
        #expect(
            s.nextRecording(afterUSec: utc(2026, 6, 1, 12)) == .init(start: utc(2026, 6, 1, 22), duration: 6 * hour))
        let always = try schedule([("00:00", "00:00")], duration: 60, continuous: true)
        #expect(always.nextRecording(afterUSec: 42) == .init(start: 42, duration: nil))
    }

    @Test(
        arguments: [
            ([("25:00", "04:00")], 3.0, 10.0, "UTC", "schedule.windows[0].start"),
            ([("06:00", "6:0")], 3.0, 10.0, "UTC", "schedule.windows[0].end"),
            ([("06:00", "12:60")], 3.0, 10.0, "UTC", "schedule.windows[0].end"),
            ([("", "12:00")], 3.0, 10.0, "UTC", "schedule.windows[0].start"),
            ([("24:00", "12:00")], 3.0, 10.0, "UTC", "schedule.windows[0].start"),
            ([], 3.0, 10.0, "UTC", "schedule.windows is empty"),
            ([("06:00", "18:00")], 0.0, 10.0, "UTC", "schedule.duration"),
            ([("06:00", "18:00")], 3.0, 2.0, "UTC", "schedule.interval"),
            ([("06:00", "18:00")], Double.nan, 10.0, "UTC", "schedule.duration"),
            ([("06:00", "06:01")], 120.0, 300.0, "UTC", "shorter than schedule.duration"),
            ([("06:00", "18:00")], 3.0, 10.0, "Mars/Olympus_Mons", "unknown time zone"),
            ([("06:00", "18:00")], 3.0, 10.0, "../../etc/passwd", "not a valid IANA zone name"),
        ] as [([(String, String)], Double, Double, String, String)])
    func invalidSchedulesAreConfigErrors(
        windows: [(String, String)], duration: Double, interval: Double, zone: String, expected: String
    ) throws {
        let error = #expect(throws: BerthError.self) {
            try schedule(windows, zone: zone, duration: duration, interval: interval)
        }
        #expect(error?.code == .invalidConfig)
        #expect(error?.message.contains(expected) == true, "\(error?.message ?? "")")
    }

    @Test func endOfDayMayBeWrittenAs2400() throws {
        let s = try schedule([("18:00", "24:00")])
        #expect(s.period(atOrAfterUSec: utc(2026, 1, 1)) == .init(start: utc(2026, 1, 1, 18), end: utc(2026, 1, 2)))
    }
}
