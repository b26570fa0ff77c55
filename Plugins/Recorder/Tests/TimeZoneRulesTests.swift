import BerthKit
import Testing

@testable import RecorderPlugin

@Suite struct TimeZoneRulesTests {
    @Test func berlinOffsetsAroundTheChanges() throws {
        let berlin = try TimeZoneRules(named: "Europe/Berlin")
        #expect(berlin.utcOffset(atUSec: utc(2026, 3, 29, 0, 59, 59)) == 3600)
        #expect(berlin.utcOffset(atUSec: utc(2026, 3, 29, 1)) == 7200)
        #expect(berlin.utcOffset(atUSec: utc(2026, 10, 25, 0, 59, 59)) == 7200)
        #expect(berlin.utcOffset(atUSec: utc(2026, 10, 25, 1)) == 3600)
        // Far beyond the file's explicit transitions: the footer rule.
        #expect(berlin.utcOffset(atUSec: utc(2090, 7, 1)) == 7200)
        #expect(berlin.utcOffset(atUSec: utc(2090, 12, 1)) == 3600)
    }

    @Test func footerRuleAgreesWithTheTransitions() throws {
        for name in ["Europe/Berlin", "America/New_York", "Australia/Sydney", "America/Santiago"] {
            let zone = try TimeZoneRules(named: name)
            let footer = try #require(zone.footer, "\(name) has a footer")
            for hourIndex in stride(from: Int64(0), to: 2 * 366 * 24, by: 1) {
                let t = utc(2025, 1, 1) / 1_000_000 + hourIndex * 3600
                #expect(footer.utcOffset(atUTC: t) == zone.utcOffset(atUTC: t), "\(name) at \(t)")
            }
        }
    }

    @Test func posixRules() throws {
        let sydney = try #require(PosixTZRule("AEST-10AEDT,M10.1.0,M4.1.0/3"))
        #expect(sydney.utcOffset(atUTC: utc(2026, 1, 10) / 1_000_000) == 11 * 3600)
        #expect(sydney.utcOffset(atUTC: utc(2026, 7, 10) / 1_000_000) == 10 * 3600)
        let fixed = try #require(PosixTZRule("<+0330>-3:30"))
        #expect(fixed.utcOffset(atUTC: 0) == 3 * 3600 + 1800)
        #expect(PosixTZRule("") == nil)
        #expect(PosixTZRule("CET-1CEST,M13.5.0,M10.5.0/3") == nil)
        #expect(PosixTZRule("X1") == nil)
    }

    @Test func wallTimeToInstant() throws {
        let berlin = try TimeZoneRules(named: "Europe/Berlin")
        let spring = CivilDate(year: 2026, month: 3, day: 29).dayNumber
        #expect(berlin.instant(localDay: spring, secondOfDay: 3600) * 1_000_000 == utc(2026, 3, 29, 0))
        #expect(berlin.instant(localDay: spring, secondOfDay: 9000) * 1_000_000 == utc(2026, 3, 29, 1))  // 02:30 skipped
        #expect(berlin.instant(localDay: spring, secondOfDay: 10800) * 1_000_000 == utc(2026, 3, 29, 1))
        let fall = CivilDate(year: 2026, month: 10, day: 25).dayNumber
        #expect(berlin.instant(localDay: fall, secondOfDay: 9000) * 1_000_000 == utc(2026, 10, 25, 0, 30))  // first 02:30
        #expect(berlin.instant(localDay: fall, secondOfDay: 10800) * 1_000_000 == utc(2026, 10, 25, 2))
    }

    @Test func utcNeedsNoFile() throws {
        let zone = try TimeZoneRules(named: "UTC", directory: "/nonexistent")
        #expect(zone.utcOffset(atUTC: 1_000_000_000) == 0)
        #expect(throws: BerthError.self) { try TimeZoneRules(named: "Europe/Berlin", directory: "/nonexistent") }
    }

    @Test func civilCalendar() {
        for day in stride(from: Int64(-800_000), to: 800_000, by: 997) {
            #expect(CivilDate(dayNumber: day).dayNumber == day)
        }
        #expect(CivilDate(year: 2026, month: 3, day: 29).weekday == 0)
        #expect(CivilDateTime(usec: utc(2026, 3, 29, 1, 2, 3) + 45).databaseText == "2026-03-29 01:02:03.000045")
        #expect(CivilDateTime(usec: -1).databaseText == "1969-12-31 23:59:59.999999")
        #expect(CivilDateTime(usec: utc(2026, 10, 25, 1), utcOffsetSeconds: 3600).compactStamp == "20261025_020000")
    }
}
