import CBerthShim

/// One SQLite connection: opened in WAL mode with a busy timeout and foreign keys on, statements prepared with
/// typed binds and columns, `transaction { }` (nested calls become savepoints) and `PRAGMA user_version`
/// migrations. Every failure is a `BerthError` naming the database file.
///
/// A connection is not Sendable: one owner at a time (keep it inside a `Mutex` or on one thread).
public final class SQLiteDatabase {
    /// How hard a commit waits for the disk (`PRAGMA synchronous`).
    public enum Synchronous: String, Sendable {
        /// WAL + NORMAL: survives a process crash (`kill -9`); a power cut may lose the last commits.
        case normal = "NORMAL"
        /// Every commit reaches the disk before it returns: also survives a power cut.
        case full = "FULL"
    }

    public let path: String
    let handle: OpaquePointer
    private var savepointDepth = 0

    /// Opens (and creates, unless `readOnly`) the database at `path`.
    public init(
        path: String, readOnly: Bool = false, busyTimeoutMilliseconds: Int32 = 5000,
        synchronous: Synchronous = .full
    ) throws {
        self.path = path
        var db: OpaquePointer?
        let flags = (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let error = SQLiteFailure.error(rc, handle: db, path: path, doing: "cannot open")
            sqlite3_close_v2(db)
            throw error
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, busyTimeoutMilliseconds)
        if !readOnly {
            // journal_mode answers with the mode in effect (an in-memory database stays "memory").
            let mode = try prepare("PRAGMA journal_mode=WAL").firstValue()?.text ?? ""
            if mode.lowercased() != "wal" && mode.lowercased() != "memory" {
                throw BerthError.failed("SQLite database \"\(path)\": cannot switch to WAL journal (got \"\(mode)\")")
            }
        }
        try execute("PRAGMA synchronous=\(synchronous.rawValue); PRAGMA foreign_keys=ON")
    }

    deinit {
        sqlite3_close_v2(handle)
    }

    /// Runs one or more statements that take no arguments (`;`-separated).
    public func execute(_ sql: String) throws {
        var message: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &message)
        defer { sqlite3_free(message) }
        if rc != SQLITE_OK {
            throw SQLiteFailure.error(rc, handle: handle, path: path, doing: SQLiteFailure.abbreviate(sql))
        }
    }

    /// Runs one statement with its arguments to completion; returns the number of rows it changed.
    @discardableResult
    public func execute(_ sql: String, _ arguments: [SQLiteValue]) throws -> Int {
        try prepare(sql).run(arguments)
        return changes
    }

    /// Prepares one statement.
    public func prepare(_ sql: String) throws -> SQLiteStatement {
        var statement: OpaquePointer?
        let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard rc == SQLITE_OK, let statement else {
            throw SQLiteFailure.error(rc, handle: handle, path: path, doing: SQLiteFailure.abbreviate(sql))
        }
        return SQLiteStatement(database: self, handle: statement, sql: sql)
    }

    /// The rows a query returns, each mapped by `row`.
    public func query<T>(_ sql: String, _ arguments: [SQLiteValue] = [], row: (SQLiteStatement) throws -> T) throws
        -> [T]
    {
        try prepare(sql).rows(arguments, row)
    }

    /// Runs `body` in one transaction (`BEGIN IMMEDIATE`, so a writer waits for the lock up front rather than
    /// failing at commit). An error from `body` rolls back and is rethrown. Nested calls use savepoints.
    @discardableResult
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        let nested = sqlite3_get_autocommit(handle) == 0
        let name = "berth_sp\(savepointDepth)"
        try execute(nested ? "SAVEPOINT \(name)" : "BEGIN IMMEDIATE")
        savepointDepth += 1
        defer { savepointDepth -= 1 }
        do {
            let result = try body()
            try execute(nested ? "RELEASE \(name)" : "COMMIT")
            return result
        } catch {
            // A failed COMMIT may leave the transaction open; rolling back an already-closed one is harmless.
            if nested {
                try? execute("ROLLBACK TO \(name); RELEASE \(name)")
            } else if sqlite3_get_autocommit(handle) == 0 {
                try? execute("ROLLBACK")
            }
            throw error
        }
    }

    /// `PRAGMA user_version`: the schema version migrations have reached.
    public func userVersion() throws -> Int {
        Int(try prepare("PRAGMA user_version").firstValue()?.integer ?? 0)
    }

    /// Brings the schema to `migrations.count`: `migrations[i]` (a script) takes version i to i + 1, each in its
    /// own transaction together with the new `user_version`. A database newer than the migrations is refused.
    /// Returns the version found before migrating.
    @discardableResult
    public func migrate(_ migrations: [String]) throws -> Int {
        let found = try userVersion()
        if found > migrations.count {
            throw BerthError.failed(
                "SQLite database \"\(path)\": schema version \(found) is newer than this program knows "
                    + "(\(migrations.count)); refusing to use it")
        }
        for version in found..<migrations.count {
            try transaction {
                try execute(migrations[version])
                try execute("PRAGMA user_version = \(version + 1)")
            }
        }
        return found
    }

    /// The rowid of the last inserted row on this connection.
    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }
    /// Rows changed by the last INSERT, UPDATE or DELETE.
    public var changes: Int { Int(sqlite3_changes(handle)) }
    /// True while a transaction is open.
    public var inTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }
}
