/// A POSIX TZ rule such as `CET-1CEST,M3.5.0,M10.5.0/3` (the footer of a TZif file), which gives the UTC offset
/// for every instant after the file's last explicit transition. Supports `Mm.w.d`, `Jn` and `n` dates, quoted
/// `<+03>` names and the RFC 8536 extension of transition times outside 0...24 h.
struct PosixTZRule: Sendable, Equatable {
    enum DateRule: Sendable, Equatable {
        case julianNoLeap(Int)  // Jn: 1...365, February 29 never counted
        case zeroBased(Int)  // n: 0...365
        case monthWeekDay(month: Int, week: Int, weekday: Int)  // Mm.w.d, week 5 = last
    }

    struct Transition: Sendable, Equatable {
        var date: DateRule
        var timeSeconds: Int  // local wall time of the change, default 02:00
    }

    var standardOffset: Int32  // seconds east of UTC
    var daylightOffset: Int32?
    var start: Transition?
    var end: Transition?

    /// Parses a TZ string; nil when it is not valid POSIX TZ syntax.
    init?(_ text: String) {
        var scanner = Scanner(Array(text.utf8))
        guard scanner.name(), let std = scanner.offset() else { return nil }
        standardOffset = Int32(-std)
        if scanner.atEnd { return }
        guard scanner.name() else { return nil }
        if let dst = scanner.offset() { daylightOffset = Int32(-dst) } else { daylightOffset = standardOffset + 3600 }
        if scanner.atEnd {
            // No rule given: the historical US default.
            start = Transition(date: .monthWeekDay(month: 3, week: 2, weekday: 0), timeSeconds: 7200)
            end = Transition(date: .monthWeekDay(month: 11, week: 1, weekday: 0), timeSeconds: 7200)
            return
        }
        guard scanner.take(UInt8(ascii: ",")), let s = scanner.transition(), scanner.take(UInt8(ascii: ",")),
            let e = scanner.transition(), scanner.atEnd
        else { return nil }
        start = s
        end = e
    }

    /// UTC offset in seconds at `seconds` after the epoch.
    func utcOffset(atUTC seconds: Int64) -> Int32 {
        guard let dst = daylightOffset, let start, let end else { return standardOffset }
        let year = CivilDateTime(usec: seconds * 1_000_000, utcOffsetSeconds: standardOffset).date.year
        // The change to daylight time is given in standard local time, the change back in daylight local time.
        let dstStart = Self.localSeconds(start, year: year) - Int64(standardOffset)
        let dstEnd = Self.localSeconds(end, year: year) - Int64(dst)
        let inDaylight =
            dstStart < dstEnd ? (seconds >= dstStart && seconds < dstEnd) : !(seconds >= dstEnd && seconds < dstStart)
        return inDaylight ? dst : standardOffset
    }

    /// Local seconds since the epoch at which `transition` happens in `year`.
    static func localSeconds(_ transition: Transition, year: Int) -> Int64 {
        let jan1 = CivilDate(year: year, month: 1, day: 1).dayNumber
        let day: Int64
        switch transition.date {
        case .julianNoLeap(let n):
            let leapShift = CivilDate.isLeapYear(year) && n >= 60 ? 1 : 0
            day = jan1 + Int64(n - 1 + leapShift)
        case .zeroBased(let n):
            day = jan1 + Int64(n)
        case .monthWeekDay(let month, let week, let weekday):
            let first = CivilDate(year: year, month: month, day: 1)
            var dom = 1 + (weekday - first.weekday + 7) % 7 + (week - 1) * 7
            let length = CivilDate.daysInMonth(year: year, month: month)
            while dom > length { dom -= 7 }
            day = CivilDate(year: year, month: month, day: dom).dayNumber
        }
        return day * 86400 + Int64(transition.timeSeconds)
    }
}

/// A byte cursor over a TZ string.
private struct Scanner {
    let bytes: [UInt8]
    var index = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { index == bytes.count }
    var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

    mutating func take(_ byte: UInt8) -> Bool {
        guard peek == byte else { return false }
        index += 1
        return true
    }

    /// A zone abbreviation: 3+ letters, or anything inside `<...>`.
    mutating func name() -> Bool {
        if take(UInt8(ascii: "<")) {
            let begin = index
            while let c = peek, c != UInt8(ascii: ">") { index += 1 }
            return index - begin >= 1 && take(UInt8(ascii: ">"))
        }
        let begin = index
        while let c = peek, (c | 0x20) >= UInt8(ascii: "a"), (c | 0x20) <= UInt8(ascii: "z") { index += 1 }
        return index - begin >= 3
    }

    mutating func number(maxDigits: Int) -> Int? {
        var value = 0
        var digits = 0
        while digits < maxDigits, let c = peek, c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") {
            value = value * 10 + Int(c - UInt8(ascii: "0"))
            index += 1
            digits += 1
        }
        return digits > 0 ? value : nil
    }

    /// `[+-]hh[:mm[:ss]]` in seconds (hours up to 167 for the RFC 8536 extension).
    mutating func offset() -> Int? {
        var sign = 1
        if take(UInt8(ascii: "-")) { sign = -1 } else { _ = take(UInt8(ascii: "+")) }
        guard let hours = number(maxDigits: 3), hours <= 167 else { return nil }
        var seconds = hours * 3600
        if take(UInt8(ascii: ":")) {
            guard let minutes = number(maxDigits: 2), minutes < 60 else { return nil }
            seconds += minutes * 60
            if take(UInt8(ascii: ":")) {
                guard let secs = number(maxDigits: 2), secs < 60 else { return nil }
                seconds += secs
            }
        }
        return sign * seconds
    }

    mutating func transition() -> PosixTZRule.Transition? {
        let date: PosixTZRule.DateRule
        if take(UInt8(ascii: "M")) {
            guard let m = number(maxDigits: 2), (1...12).contains(m), take(UInt8(ascii: ".")),
                let w = number(maxDigits: 1), (1...5).contains(w), take(UInt8(ascii: ".")),
                let d = number(maxDigits: 1), (0...6).contains(d)
            else { return nil }
            date = .monthWeekDay(month: m, week: w, weekday: d)
        } else if take(UInt8(ascii: "J")) {
            guard let n = number(maxDigits: 3), (1...365).contains(n) else { return nil }
            date = .julianNoLeap(n)
        } else {
            guard let n = number(maxDigits: 3), (0...365).contains(n) else { return nil }
            date = .zeroBased(n)
        }
        var time = 7200
        if take(UInt8(ascii: "/")) {
            guard let t = offset() else { return nil }
            time = t
        }
        return .init(date: date, timeSeconds: time)
    }
}
