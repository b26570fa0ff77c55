import CBerthShim
import Glibc

/// Reading systemd's journal (sd-journal), for clients that explain a daemon that does not answer: the last lines a
/// unit logged at a given priority or worse, as `journalctl [--user] -u UNIT -p PRIORITY` shows them.
public enum Journal {
    /// The last `count` messages of `unit`, oldest first, at `priority` (0 emerg ... 7 debug) or more urgent. With
    /// `user`, the calling user's units (`journalctl --user`); else the system's. Only entries from `sinceUSec` on
    /// (wall clock; 0: all), e.g. the unit's last start. Empty when there is no journal or nothing matches; the read
    /// is bounded by `count` and never waits for new entries.
    public static func lastMessages(
        unit: String, user: Bool, priority: Int = 3, count: Int = 3, sinceUSec: UInt64 = 0
    ) -> [String] {
        var journal: OpaquePointer? = nil
        let flags = Int32(SD_JOURNAL_LOCAL_ONLY) | (user ? Int32(SD_JOURNAL_CURRENT_USER) : Int32(SD_JOURNAL_SYSTEM))
        guard sd_journal_open(&journal, flags) >= 0, let journal else { return [] }
        defer { sd_journal_close(journal) }
        // (unit AND uid) AND (PRIORITY=0 OR ... OR PRIORITY=priority): matches of one field are ORed.
        var matches = [user ? "_SYSTEMD_USER_UNIT=\(unit)" : "_SYSTEMD_UNIT=\(unit)"]
        if user { matches.append("_UID=\(getuid())") }
        for match in matches { guard add(journal, match) else { return [] } }
        for level in 0...max(0, min(priority, 7)) { guard add(journal, "PRIORITY=\(level)") else { return [] } }
        guard sd_journal_seek_tail(journal) >= 0 else { return [] }
        var lines: [String] = []
        while lines.count < count, sd_journal_previous(journal) > 0 {
            var stamp: UInt64 = 0
            if sinceUSec > 0, sd_journal_get_realtime_usec(journal, &stamp) >= 0, stamp < sinceUSec { break }
            var data: UnsafeRawPointer? = nil
            var length = 0
            guard sd_journal_get_data(journal, "MESSAGE", &data, &length) >= 0, let data else { continue }
            let field = String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
            lines.append(String(field.dropFirst("MESSAGE=".count)))
        }
        return lines.reversed()
    }

    private static func add(_ journal: OpaquePointer, _ match: String) -> Bool {
        match.withCString { sd_journal_add_match(journal, $0, 0) } >= 0
    }
}
