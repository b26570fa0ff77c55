import BerthKit
import Synchronization

/// `metadata.db`: deployments, recordings and heartbeats in SQLite, every write in a transaction. One connection
/// behind a mutex; callers are dedicated threads or short calls (SQLite waits up to its busy timeout).
final class MetadataStore: Sendable {
    let path: String
    private let lock = Mutex(())
    /// Touched only inside `lock` (the connection is not Sendable; the mutex is what makes this class so).
    nonisolated(unsafe) private let connection: SQLiteDatabase

    /// Processors each new recording is queued for (`processing_task` rows written in the recording's own
    /// transaction), and whether a new recording is kept at once (no processor and no saving filter).
    let processors: [String]
    let keepAtInsert: Bool

    /// Opens (creating if needed) and migrates the database.
    init(path: String, processors: [String] = [], keepAtInsert: Bool = true) throws {
        self.path = path
        self.processors = processors
        self.keepAtInsert = keepAtInsert && processors.isEmpty
        let db = try SQLiteDatabase(path: path)
        // A small page cache (256 KiB): the recorder appends and reads recent rows, and the daemon's memory stays
        // flat however large the database grows.
        try db.execute("PRAGMA cache_size=-256")
        try db.migrate(MetadataSchema.migrations)
        connection = db
    }

    /// Runs `body` with the connection, inside one transaction when `write`.
    @discardableResult
    func access<T: Sendable>(write: Bool = false, _ body: (SQLiteDatabase) throws -> T) throws -> T {
        try lock.withLock { _ in
            write ? try connection.transaction { try body(connection) } : try body(connection)
        }
    }

    func schemaVersion() throws -> Int { try access { try $0.userVersion() } }

    // MARK: Deployments

    private static let deploymentColumns = "id, name, latitude, longitude, started_usec, ended_usec"

    private static func deployment(_ row: SQLiteStatement) -> Deployment {
        Deployment(
            id: row.text(at: 0) ?? "", name: row.text(at: 1) ?? "", latitude: row.double(at: 2),
            longitude: row.double(at: 3), startedUSec: row.int64(at: 4), endedUSec: row.optionalInt64(at: 5))
    }

    func activeDeployment() throws -> Deployment? {
        try access { db in
            try db.query(
                "SELECT \(Self.deploymentColumns) FROM deployment WHERE ended_usec IS NULL", row: Self.deployment
            )
            .first
        }
    }

    /// The deployment that was active at `usec` (the newest one, should periods overlap).
    func deployment(activeAtUSec usec: Int64) throws -> Deployment? {
        try access { db in
            try db.query(
                """
                SELECT \(Self.deploymentColumns) FROM deployment
                WHERE started_usec <= ?1 AND (ended_usec IS NULL OR ended_usec >= ?1)
                ORDER BY started_usec DESC LIMIT 1
                """, [.integer(usec)], row: Self.deployment
            ).first
        }
    }

    /// Stores a new active deployment; `.alreadyExists` when one is active.
    func insertDeployment(_ d: Deployment) throws {
        try access(write: true) { db in
            if let active = try db.query(
                "SELECT \(Self.deploymentColumns) FROM deployment WHERE ended_usec IS NULL", row: Self.deployment
            ).first {
                throw BerthError.alreadyExists(
                    "deployment \"\(active.name)\" (\(active.id)) is already active; stop it first")
            }
            try db.execute(
                """
                INSERT INTO deployment (id, name, started_on, ended_on, latitude, longitude, started_usec, ended_usec)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [
                    .text(d.id), .text(d.name), .text(Self.text(d.startedUSec)), .init(d.endedUSec.map(Self.text)),
                    .real(d.latitude), .real(d.longitude), .integer(d.startedUSec), .init(d.endedUSec),
                ])
        }
    }

    /// Ends the active deployment at `usec`; nil when none is active.
    func endActiveDeployment(atUSec usec: Int64) throws -> Deployment? {
        try access(write: true) { db in
            guard
                var active = try db.query(
                    "SELECT \(Self.deploymentColumns) FROM deployment WHERE ended_usec IS NULL", row: Self.deployment
                ).first
            else { return nil }
            let ended = max(usec, active.startedUSec)
            try db.execute(
                "UPDATE deployment SET ended_on = ?, ended_usec = ? WHERE id = ?",
                [.text(Self.text(ended)), .integer(ended), .text(active.id)])
            active.endedUSec = ended
            return active
        }
    }

    /// acoupi's datetime text for an instant (UTC).
    static func text(_ usec: Int64) -> String { CivilDateTime(usec: usec).databaseText }
}
