import BerthKit
import Synchronization

/// `outbox.db`: every message, one row per destination, written (synchronous=FULL, so a power cut loses nothing
/// committed) before anything is sent, and deleted only once the destination confirmed it. Rows are sent in `seq`
/// order per destination. The outbox has a cap in rows and bytes: past it the oldest rows go, and `dropped` counts
/// them (the heartbeat says so). One connection behind a mutex; callers are dedicated threads.
final class Outbox: Sendable {
    struct Row: Sendable, Equatable {
        var seq: Int64
        var id: String
        var destination: String
        var event: String
        var topic: String
        var payload: String
        var createdUSec: UInt64
        var attempts: Int
        var lastError: String
    }

    struct New: Sendable {
        var id: String
        var destination: String
        var event: String
        var topic: String
        var payload: String
        var createdUSec: UInt64
    }

    private struct Totals {
        var rows = 0
        var bytes = 0
        var dropped: UInt64 = 0
    }

    let path: String
    private let state = Mutex(Totals())
    private let lock = Mutex(())
    /// Touched only inside `lock`.
    nonisolated(unsafe) private let connection: SQLiteDatabase
    private let limits: Mutex<(rows: Int, bytes: Int)>

    static let migrations = [
        """
        CREATE TABLE message(
            seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, destination TEXT NOT NULL, event TEXT NOT NULL,
            topic TEXT NOT NULL, payload TEXT NOT NULL, bytes INTEGER NOT NULL, created_usec INTEGER NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '');
        CREATE INDEX message_destination ON message(destination, seq);
        CREATE TABLE counter(name TEXT PRIMARY KEY, value INTEGER NOT NULL);
        INSERT INTO counter VALUES ('dropped', 0);
        """
    ]

    init(path: String, maxRows: Int, maxBytes: Int) throws {
        self.path = path
        let db = try SQLiteDatabase(path: path, synchronous: .full)
        try db.execute("PRAGMA cache_size=-512")
        try db.migrate(Self.migrations)
        connection = db
        limits = Mutex((maxRows, maxBytes))
        let rows = try db.prepare("SELECT count(*), coalesce(sum(bytes), 0) FROM message").rows {
            ($0.int(at: 0), $0.int(at: 1))
        }
        let dropped = try db.prepare("SELECT value FROM counter WHERE name = 'dropped'").firstValue()?.integer ?? 0
        state.withLock { $0 = Totals(rows: rows.first?.0 ?? 0, bytes: rows.first?.1 ?? 0, dropped: UInt64(dropped)) }
    }

    private func access<T>(_ body: (SQLiteDatabase) throws -> T) throws -> T {
        try lock.withLock { _ in try body(connection) }
    }

    var pending: Int { state.withLock { $0.rows } }
    var pendingBytes: Int { state.withLock { $0.bytes } }
    var dropped: UInt64 { state.withLock { $0.dropped } }

    func setLimits(rows: Int, bytes: Int) { limits.withLock { $0 = (rows, bytes) } }

    /// Writes `messages` in one transaction, then drops the oldest rows past the cap. Returns how many were dropped.
    @discardableResult
    func add(_ messages: [New]) throws -> Int {
        guard !messages.isEmpty else { return 0 }
        let (maxRows, maxBytes) = limits.withLock { $0 }
        return try access { db in
            try db.transaction {
                let insert = try db.prepare(
                    "INSERT INTO message(id, destination, event, topic, payload, bytes, created_usec) VALUES (?,?,?,?,?,?,?)"
                )
                var added = 0
                for m in messages {
                    let bytes = m.payload.utf8.count + m.topic.utf8.count
                    try insert.run([
                        .text(m.id), .text(m.destination), .text(m.event), .text(m.topic), .text(m.payload),
                        .init(bytes), .init(m.createdUSec),
                    ])
                    added += bytes
                }
                var totals = state.withLock { $0 }
                totals.rows += messages.count
                totals.bytes += added
                var dropped = 0
                if totals.rows > maxRows || totals.bytes > maxBytes {
                    // The oldest first, until both limits hold.
                    let oldest = try db.prepare("SELECT seq, bytes FROM message ORDER BY seq LIMIT ?")
                    let excessRows = max(0, totals.rows - maxRows)
                    var candidates = try oldest.rows([.init(max(excessRows, 1) + 256)]) {
                        ($0.int64(at: 0), $0.int(at: 1))
                    }
                    var last: Int64 = -1
                    while totals.rows > maxRows || totals.bytes > maxBytes {
                        if candidates.isEmpty {
                            candidates = try db.prepare(
                                "SELECT seq, bytes FROM message WHERE seq > ? ORDER BY seq LIMIT 1024"
                            )
                            .rows([.integer(last)]) { ($0.int64(at: 0), $0.int(at: 1)) }
                            if candidates.isEmpty { break }
                        }
                        let (seq, bytes) = candidates.removeFirst()
                        last = seq
                        totals.rows -= 1
                        totals.bytes -= bytes
                        dropped += 1
                    }
                    if last >= 0 {
                        try db.execute("DELETE FROM message WHERE seq <= ?", [.integer(last)])
                        try db.execute("UPDATE counter SET value = value + ? WHERE name = 'dropped'", [.init(dropped)])
                        totals.dropped += UInt64(dropped)
                    }
                }
                state.withLock { $0 = totals }
                return dropped
            }
        }
    }

    /// The oldest `limit` rows for `destination`, in order.
    func next(_ destination: String, limit: Int) throws -> [Row] {
        try access { db in
            try db.query(
                "SELECT seq, id, destination, event, topic, payload, created_usec, attempts, last_error FROM message "
                    + "WHERE destination = ? ORDER BY seq LIMIT ?", [.text(destination), .init(limit)], row: Self.row)
        }
    }

    /// Every destination's oldest rows, `limit` in all, in order (ListPending).
    func list(limit: Int) throws -> [Row] {
        try access { db in
            try db.query(
                "SELECT seq, id, destination, event, topic, '', created_usec, attempts, last_error FROM message "
                    + "ORDER BY seq LIMIT ?", [.init(limit)], row: Self.row)
        }
    }

    func count(_ destination: String) throws -> Int {
        try access { db in
            Int(
                try db.prepare("SELECT count(*) FROM message WHERE destination = ?").firstValue([.text(destination)])?
                    .integer ?? 0)
        }
    }

    private static func row(_ r: SQLiteStatement) -> Row {
        Row(
            seq: r.int64(at: 0), id: r.text(at: 1) ?? "", destination: r.text(at: 2) ?? "", event: r.text(at: 3) ?? "",
            topic: r.text(at: 4) ?? "", payload: r.text(at: 5) ?? "", createdUSec: UInt64(max(0, r.int64(at: 6))),
            attempts: r.int(at: 7), lastError: r.text(at: 8) ?? "")
    }

    /// The destination confirmed these rows: they leave the outbox.
    func delivered(_ rows: [Row]) throws {
        guard !rows.isEmpty else { return }
        try access { db in
            try db.transaction {
                let delete = try db.prepare("DELETE FROM message WHERE seq = ?")
                var gone = (rows: 0, bytes: 0)
                for row in rows {
                    try delete.run([.integer(row.seq)])
                    if db.changes > 0 {
                        gone.rows += 1
                        gone.bytes += row.payload.utf8.count + row.topic.utf8.count
                    }
                }
                state.withLock {
                    $0.rows -= gone.rows
                    $0.bytes -= gone.bytes
                }
            }
        }
    }

    /// A delivery attempt of the first row failed: counted on it, with the reason.
    func failed(_ row: Row, error: String) throws {
        _ = try access { db in
            try db.execute(
                "UPDATE message SET attempts = attempts + 1, last_error = ? WHERE seq = ?",
                [.text(error), .integer(row.seq)])
        }
    }

    /// Removes message `id` for `destination` (a Test message that was not confirmed). Returns whether it was there.
    @discardableResult
    func remove(id: String, destination: String) throws -> Bool {
        try access { db in
            try db.transaction {
                let rows = try db.query(
                    "SELECT bytes FROM message WHERE id = ? AND destination = ?", [.text(id), .text(destination)],
                    row: { $0.int(at: 0) })
                try db.execute("DELETE FROM message WHERE id = ? AND destination = ?", [.text(id), .text(destination)])
                state.withLock {
                    $0.rows -= rows.count
                    $0.bytes -= rows.reduce(0, +)
                }
                return !rows.isEmpty
            }
        }
    }

    /// Removes the rows of destinations no longer configured; they count as dropped. Returns how many.
    @discardableResult
    func removeDestinations(except names: Set<String>) throws -> Int {
        try access { db in
            try db.transaction {
                let stale = try db.query(
                    "SELECT seq, bytes, destination FROM message",
                    row: {
                        ($0.int64(at: 0), $0.int(at: 1), $0.text(at: 2) ?? "")
                    }
                ).filter { !names.contains($0.2) }
                guard !stale.isEmpty else { return 0 }
                let delete = try db.prepare("DELETE FROM message WHERE seq = ?")
                for row in stale {
                    try delete.run([.integer(row.0)])
                }
                try db.execute("UPDATE counter SET value = value + ? WHERE name = 'dropped'", [.init(stale.count)])
                state.withLock {
                    $0.rows -= stale.count
                    $0.bytes -= stale.reduce(0) { $0 + $1.1 }
                    $0.dropped += UInt64(stale.count)
                }
                return stale.count
            }
        }
    }
}
