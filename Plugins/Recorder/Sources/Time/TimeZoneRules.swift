import BerthKit

/// The UTC offsets of one IANA time zone, read from its TZif file (RFC 8536) under `/usr/share/zoneinfo`: the
/// explicit transitions, then the footer's POSIX rule for later instants. A plain value, safe on any thread,
/// unlike `localtime_r` after changing the process-wide `TZ`.
struct TimeZoneRules: Sendable, Equatable {
    static let defaultDirectory = "/usr/share/zoneinfo"
    static let utc = TimeZoneRules(name: "UTC", transitions: [], offsetsAfter: [], initialOffset: 0, footer: nil)

    let name: String
    /// Transition instants (seconds since the epoch, ascending) and the offset in force from each one on.
    let transitions: [Int64]
    let offsetsAfter: [Int32]
    /// The offset before the first transition (RFC 8536: time type 0).
    let initialOffset: Int32
    /// The rule after the last transition, when the file has one.
    let footer: PosixTZRule?

    /// Loads the zone `name` (e.g. "Europe/Berlin"). "UTC" works even without tzdata installed.
    init(named name: String, directory: String = defaultDirectory) throws {
        guard Self.isValidName(name) else {
            throw BerthError.invalidConfig(
                "time zone \"\(name)\" is not a valid IANA zone name (e.g. \"Europe/Berlin\")")
        }
        let bytes: [UInt8]
        do {
            bytes = try FileIO.readAll(path: directory + "/" + name, limit: 1 << 20)
        } catch {
            if name == "UTC" || name == "Etc/UTC" {
                self = .utc
                return
            }
            throw BerthError.invalidConfig("unknown time zone \"\(name)\": no file in \(directory) (\(error))")
        }
        guard let parsed = TZifParser.parse(bytes) else {
            throw BerthError.invalidConfig("time zone \"\(name)\": \(directory)/\(name) is not a valid TZif file")
        }
        self.init(
            name: name, transitions: parsed.transitions, offsetsAfter: parsed.offsets,
            initialOffset: parsed.initialOffset, footer: parsed.footer)
    }

    init(name: String, transitions: [Int64], offsetsAfter: [Int32], initialOffset: Int32, footer: PosixTZRule?) {
        self.name = name
        self.transitions = transitions
        self.offsetsAfter = offsetsAfter
        self.initialOffset = initialOffset
        self.footer = footer
    }

    /// IANA names are relative paths of letters, digits and `_+-`; never `..` or absolute.
    static func isValidName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 255, !name.hasPrefix("/") else { return false }
        for part in name.split(separator: "/", omittingEmptySubsequences: false) {
            guard !part.isEmpty, part != ".", part != ".." else { return false }
            for c in part.utf8 {
                let ok =
                    (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x7a) || c == 0x5f || c == 0x2b
                    || c == 0x2d || c == 0x2e
                if !ok { return false }
            }
        }
        return true
    }

    /// Seconds east of UTC at `seconds` after the epoch.
    func utcOffset(atUTC seconds: Int64) -> Int32 {
        guard let last = transitions.last else { return footer?.utcOffset(atUTC: seconds) ?? initialOffset }
        if seconds >= last, let footer { return footer.utcOffset(atUTC: seconds) }
        if seconds < transitions[0] { return initialOffset }
        // The last transition at or before `seconds`.
        var low = 0
        var high = transitions.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if transitions[mid] <= seconds { low = mid } else { high = mid - 1 }
        }
        return offsetsAfter[low]
    }

    func utcOffset(atUSec usec: Int64) -> Int32 { utcOffset(atUTC: floorDiv(usec, 1_000_000)) }

    /// The local wall-clock reading at an instant.
    func civil(atUSec usec: Int64) -> CivilDateTime {
        CivilDateTime(usec: usec, utcOffsetSeconds: utcOffset(atUSec: usec))
    }

    /// The local day number (days since 1970-01-01 in this zone) at an instant.
    func localDay(atUSec usec: Int64) -> Int64 { civil(atUSec: usec).date.dayNumber }

    /// The instant (seconds since the epoch) at which local wall time `secondOfDay` on local day `day` happens.
    /// A wall time that happens twice (the hour repeated when clocks go back) maps to its first occurrence; one
    /// that never happens (skipped when clocks go forward) maps to the end of the gap, the moment of the change.
    func instant(localDay day: Int64, secondOfDay: Int) -> Int64 {
        let local = day * 86400 + Int64(secondOfDay)
        // The offsets a day either side bound every offset near `local` (zones change at most once a day).
        let before = utcOffset(atUTC: local - 86400 - 14 * 3600)
        let after = utcOffset(atUTC: local + 86400 + 14 * 3600)
        var candidates: [Int64] = []
        for offset in Set([
            before, after, utcOffset(atUTC: local - Int64(before)), utcOffset(atUTC: local - Int64(after)),
        ]) {
            let utc = local - Int64(offset)
            if utcOffset(atUTC: utc) == offset { candidates.append(utc) }
        }
        if let first = candidates.min() { return first }
        // A gap: find the change between the two readings by bisection on the offset.
        var low = local - Int64(max(before, after))  // still on the old offset
        var high = local - Int64(min(before, after))  // already on the new one
        let oldOffset = utcOffset(atUTC: low)
        while high - low > 1 {
            let mid = low + (high - low) / 2
            if utcOffset(atUTC: mid) == oldOffset { low = mid } else { high = mid }
        }
        return high
    }
}
