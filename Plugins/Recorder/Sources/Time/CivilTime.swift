/// Proleptic Gregorian calendar arithmetic on day numbers (days since 1970-01-01), without the C library's
/// process-wide TZ state. Algorithms after Howard Hinnant's "chrono-compatible low-level date algorithms".
struct CivilDate: Hashable, Comparable, Sendable, CustomStringConvertible {
    var year: Int
    var month: Int  // 1...12
    var day: Int  // 1...31

    /// Days since 1970-01-01 of this date.
    var dayNumber: Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let m = Int64(month)
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    init(year: Int, month: Int, day: Int) {
        self.year = year
        self.month = month
        self.day = day
    }

    init(dayNumber: Int64) {
        let z = dayNumber + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        self.year = Int(yoe + era * 400 + (m <= 2 ? 1 : 0))
        self.month = Int(m)
        self.day = Int(d)
    }

    /// 0 = Sunday ... 6 = Saturday.
    var weekday: Int { Int(floorMod(dayNumber + 4, 7)) }

    static func isLeapYear(_ year: Int) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: isLeapYear(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    static func < (a: CivilDate, b: CivilDate) -> Bool { (a.year, a.month, a.day) < (b.year, b.month, b.day) }

    var description: String { "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))" }
}

/// A wall-clock reading: a date and a time of day, to the microsecond.
struct CivilDateTime: Hashable, Sendable {
    var date: CivilDate
    var secondOfDay: Int  // 0..<86400
    var microsecond: Int = 0

    var hour: Int { secondOfDay / 3600 }
    var minute: Int { secondOfDay / 60 % 60 }
    var second: Int { secondOfDay % 60 }

    /// The wall-clock reading `usec` microseconds after the epoch at a fixed UTC offset.
    init(usec: Int64, utcOffsetSeconds: Int32 = 0) {
        let local = floorDiv(usec, 1_000_000) + Int64(utcOffsetSeconds)
        date = CivilDate(dayNumber: floorDiv(local, 86400))
        secondOfDay = Int(floorMod(local, 86400))
        microsecond = Int(floorMod(usec, 1_000_000))
    }

    /// `YYYYmmdd_HHMMSS`, the recording file-name stamp.
    var compactStamp: String {
        "\(pad(date.year, 4))\(pad(date.month, 2))\(pad(date.day, 2))_\(pad(hour, 2))\(pad(minute, 2))\(pad(second, 2))"
    }

    /// `YYYY-MM-DD HH:MM:SS.ffffff`, the text form acoupi's database uses for datetimes.
    var databaseText: String {
        "\(date) \(pad(hour, 2)):\(pad(minute, 2)):\(pad(second, 2)).\(pad(microsecond, 6))"
    }
}

/// Floor division and modulo (the C operators truncate toward zero; times before 1970 need floor).
func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}

func floorMod(_ a: Int64, _ b: Int64) -> Int64 { a - floorDiv(a, b) * b }

/// The smallest multiple of `step` that is >= `value`.
func ceilToMultiple(_ value: Int64, of step: Int64) -> Int64 {
    let down = floorDiv(value, step) * step
    return down == value ? value : down + step
}

/// Zero-padded decimal.
func pad(_ value: Int, _ width: Int) -> String {
    let digits = String(value < 0 ? -value : value)
    let padded = digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    return value < 0 ? "-" + padded : padded
}
