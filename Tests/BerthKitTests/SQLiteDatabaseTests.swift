import Glibc
import Testing

@testable import BerthKit

/// BerthKit's SQLite wrapper (used by pickup, the recorder and instances).
@Suite struct SQLiteDatabaseTests {
    @Test func opensInWALWithTypedBindsAndColumns() throws {
        let dir = TempDirectory("sqlite")
        let db = try SQLiteDatabase(path: dir.path + "/t.db")
        #expect(try db.prepare("PRAGMA journal_mode").firstValue() == .text("wal"))
        #expect(try db.prepare("PRAGMA foreign_keys").firstValue() == .integer(1))
        try db.execute("CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, n TEXT)")
        try db.execute("INSERT INTO t VALUES (?, ?, ?, ?, ?)", [.integer(-5), 2.5, "héllo", .blob([0, 1, 255]), nil])
        #expect(db.lastInsertRowID == 1)
        let rows = try db.query("SELECT i, r, s, b, n FROM t") { row in
            [row.value(at: 0), row.value(at: 1), row.value(at: 2), row.value(at: 3), row.value(at: 4)]
        }
        #expect(rows == [[.integer(-5), .real(2.5), .text("héllo"), .blob([0, 1, 255]), .null]])
        let error = #expect(throws: BerthError.self) { try db.execute("INSERT INTO t VALUES (?, ?, ?, ?, ?)", [1]) }
        #expect(error?.code == .invalidArgument)
        let syntax = #expect(throws: BerthError.self) { try db.execute("SELEC nonsense") }
        #expect(syntax?.message.contains("t.db") == true)
    }

    @Test func transactionsCommitOrRollBack() throws {
        let dir = TempDirectory("sqlite-tx")
        let db = try SQLiteDatabase(path: dir.path + "/t.db")
        try db.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
        try db.transaction { try db.execute("INSERT INTO t VALUES (?)", ["a"]) }
        struct Boom: Error {}
        #expect(throws: Boom.self) {
            try db.transaction {
                try db.execute("INSERT INTO t VALUES (?)", ["b"])
                throw Boom()
            }
        }
        // Nested: the inner savepoint fails alone.
        try db.transaction {
            try db.execute("INSERT INTO t VALUES (?)", ["c"])
            let duplicate = #expect(throws: BerthError.self) {
                try db.transaction { try db.execute("INSERT INTO t VALUES (?)", ["a"]) }
            }
            #expect(duplicate?.code == .alreadyExists)
        }
        #expect(try db.query("SELECT k FROM t ORDER BY k") { $0.text(at: 0) } == ["a", "c"])
        #expect(!db.inTransaction)
    }

    @Test func migrationsRunOnceAndRefuseNewerSchemas() throws {
        let dir = TempDirectory("sqlite-mig")
        let path = dir.path + "/t.db"
        let steps = ["CREATE TABLE a (x)", "CREATE TABLE b (y); INSERT INTO a VALUES (1)"]
        do {
            let db = try SQLiteDatabase(path: path)
            #expect(try db.migrate(Array(steps.prefix(1))) == 0)
            #expect(try db.userVersion() == 1)
            #expect(try db.migrate(steps) == 1)
            #expect(try db.migrate(steps) == 2)
            #expect(try db.prepare("SELECT count(*) FROM a").firstValue() == .integer(1))
        }
        let db = try SQLiteDatabase(path: path)
        let error = #expect(throws: BerthError.self) { try db.migrate(Array(steps.prefix(1))) }
        #expect(error?.message.contains("newer") == true)
        // A failing migration leaves the version where it was.
        let broken = try SQLiteDatabase(path: dir.path + "/u.db")
        #expect(throws: BerthError.self) { try broken.migrate(["CREATE TABLE a (x)", "CREATE TABLE a (x)"]) }
        #expect(try broken.userVersion() == 1)
    }

    @Test func notADatabaseIsAnError() throws {
        let dir = TempDirectory("sqlite-bad")
        try FileSystem.writeAtomically(dir.path + "/bad.db", [UInt8](repeating: 0x41, count: 4096))
        #expect(throws: BerthError.self) { try SQLiteDatabase(path: dir.path + "/bad.db") }
        #expect(throws: BerthError.self) { try SQLiteDatabase(path: dir.path + "/missing/dir/x.db") }
    }
}

/// A fresh folder under /tmp for one SQLite test, removed with everything in it when dropped.
private struct TempDirectory: ~Copyable {
    let path: String
    init(_ label: String) {
        var template = Array("/tmp/berth-\(label)-XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }
    deinit { try? FileSystem.removeTree(path) }
}
