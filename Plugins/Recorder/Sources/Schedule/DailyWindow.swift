import BerthKit

/// One daily recording window in local wall-clock time, to the minute. `end` before `start` spans midnight
/// (22:00-04:00 runs into the next day); `end == start` is the whole day.
struct DailyWindow: Sendable, Equatable, CustomStringConvertible {
    let startMinute: Int  // 0..<1440
    let endMinute: Int  // 0..<1440

    var isAllDay: Bool { startMinute == endMinute }
    var spansMidnight: Bool { endMinute < startMinute }

    /// Nominal length in minutes (a day with a clock change is an hour longer or shorter).
    var lengthMinutes: Int {
        isAllDay ? 1440 : (endMinute - startMinute + 1440) % 1440
    }

    init(startMinute: Int, endMinute: Int) {
        self.startMinute = startMinute
        self.endMinute = endMinute
    }

    /// Parses `"HH:MM"` strings; `key` names the config entry in error messages.
    init(start: String, end: String, key: String) throws {
        guard let s = Self.parse(start, allowMidnightEnd: false) else {
            throw BerthError.invalidConfig("\(key).start \"\(start)\" is not a time of day \"HH:MM\" (00:00-23:59)")
        }
        guard let e = Self.parse(end, allowMidnightEnd: true) else {
            throw BerthError.invalidConfig("\(key).end \"\(end)\" is not a time of day \"HH:MM\" (00:00-24:00)")
        }
        self.init(startMinute: s, endMinute: e % 1440)
    }

    /// Minutes after midnight of `"HH:MM"` (one or two hour digits); "24:00" only as an end.
    static func parse(_ text: String, allowMidnightEnd: Bool) -> Int? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, (1...2).contains(parts[0].count), parts[1].count == 2,
            parts.allSatisfy({ $0.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }),
            let hours = Int(parts[0]), let minutes = Int(parts[1]), minutes < 60
        else { return nil }
        if hours == 24 && minutes == 0 && allowMidnightEnd { return 1440 }
        return hours < 24 ? hours * 60 + minutes : nil
    }

    var description: String {
        func hhmm(_ m: Int) -> String { "\(pad(m / 60, 2)):\(pad(m % 60, 2))" }
        return "\(hhmm(startMinute))-\(hhmm(endMinute))"
    }
}
