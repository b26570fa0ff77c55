import BerthKit

/// One line of the deployment log.
struct DeploymentRecord: Sendable, Equatable {
    enum Status: String, Sendable { case deployed, failed, undeployed, skipped }
    var id: Int64 = 0
    var name: String
    var target: String
    var source: String
    var sha256: String
    var size: Int64
    var timeUSec: UInt64
    var status: Status
    var error: String
    /// Why a deployment failed, as the error code the method that asked for it replies with (not kept in the log).
    var code: BerthError.Code? = nil
}

/// The durable deployment log and the folders added at run time, in one SQLite database (every write one
/// transaction, so a `kill -9` leaves it readable). Not Sendable: its owner (the engine actor) serializes use.
final class DeploymentLog {
    let database: SQLiteDatabase

    init(path: String) throws {
        database = try SQLiteDatabase(path: path, synchronous: .normal)
        try database.migrate([
            """
            CREATE TABLE deployments (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, target TEXT NOT NULL,
              source TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL, time_usec INTEGER NOT NULL,
              status TEXT NOT NULL, error TEXT NOT NULL);
            CREATE INDEX deployments_artifact ON deployments(target, name, id);
            CREATE TABLE directories (name TEXT PRIMARY KEY, path TEXT NOT NULL, target TEXT NOT NULL,
              patterns TEXT NOT NULL, recursive INTEGER NOT NULL, undeploy_on_delete INTEGER NOT NULL,
              markers INTEGER NOT NULL);
            """,
            // A folder's own ignore patterns, one a line.
            "ALTER TABLE directories ADD COLUMN ignore TEXT NOT NULL DEFAULT '';",
        ])
    }

    private static let columns = "id, name, target, source, sha256, size, time_usec, status, error"

    private static func record(_ row: SQLiteStatement) -> DeploymentRecord {
        DeploymentRecord(
            id: row.int64(at: 0), name: row.text(at: 1) ?? "", target: row.text(at: 2) ?? "",
            source: row.text(at: 3) ?? "", sha256: row.text(at: 4) ?? "", size: row.int64(at: 5),
            timeUSec: UInt64(bitPattern: row.int64(at: 6)),
            status: DeploymentRecord.Status(rawValue: row.text(at: 7) ?? "") ?? .failed, error: row.text(at: 8) ?? "")
    }

    /// Appends a record; returns it with its id.
    func append(_ record: DeploymentRecord) throws -> DeploymentRecord {
        try database.transaction {
            try database.execute(
                "INSERT INTO deployments (name, target, source, sha256, size, time_usec, status, error) VALUES (?,?,?,?,?,?,?,?)",
                [
                    .text(record.name), .text(record.target), .text(record.source), .text(record.sha256),
                    .integer(record.size), SQLiteValue(record.timeUSec), .text(record.status.rawValue),
                    .text(record.error),
                ])
            var stored = record
            stored.id = database.lastInsertRowID
            return stored
        }
    }

    /// Changes a record's status (an instances deploy finishing later).
    func update(id: Int64, status: DeploymentRecord.Status, error: String) throws {
        try database.transaction {
            try database.execute(
                "UPDATE deployments SET status = ?, error = ? WHERE id = ?",
                [
                    .text(status.rawValue), .text(error), .integer(id),
                ])
        }
    }

    /// The newest records first.
    func list(limit: Int) throws -> [DeploymentRecord] {
        try database.query(
            "SELECT \(Self.columns) FROM deployments ORDER BY id DESC LIMIT ?", [.integer(Int64(limit))],
            row: Self.record)
    }

    /// The artifact's newest record that changed what is deployed (deployed or undeployed), if any.
    func current(name: String, target: String) throws -> DeploymentRecord? {
        try database.query(
            "SELECT \(Self.columns) FROM deployments WHERE target = ? AND name = ? AND status IN ('deployed', 'undeployed') "
                + "ORDER BY id DESC LIMIT 1", [.text(target), .text(name)], row: Self.record
        ).first
    }

    /// The artifact's newest record whatever its status (a failure too), if any.
    func latest(name: String, target: String) throws -> DeploymentRecord? {
        try database.query(
            "SELECT \(Self.columns) FROM deployments WHERE target = ? AND name = ? AND status != 'skipped' "
                + "ORDER BY id DESC LIMIT 1", [.text(target), .text(name)], row: Self.record
        ).first
    }

    /// Distinct versions (sha256) that were deployed for an artifact, newest first.
    func versions(name: String, target: String) throws -> [String] {
        try database.query(
            "SELECT sha256 FROM deployments WHERE target = ? AND name = ? AND status = 'deployed' GROUP BY sha256 "
                + "ORDER BY MAX(id) DESC", [.text(target), .text(name)]
        ) { $0.text(at: 0) ?? "" }
    }

    /// Versions of `name` (in any target) beyond the newest `keep` of every target that deployed it: their stored
    /// copies can go.
    func versionsToDrop(name: String, keep: Int) throws -> [String] {
        let targets = try database.query("SELECT DISTINCT target FROM deployments WHERE name = ?", [.text(name)]) {
            $0.text(at: 0) ?? ""
        }
        var kept: Set<String> = []
        var all: Set<String> = []
        for target in targets {
            let versions = try versions(name: name, target: target)
            kept.formUnion(versions.prefix(keep))
            all.formUnion(versions)
        }
        return all.subtracting(kept).sorted()
    }

    // Folders added at run time.

    func savedDirectories() throws -> [PickupDirectory] {
        try database.query(
            "SELECT name, path, target, patterns, recursive, undeploy_on_delete, markers, ignore FROM directories "
                + "ORDER BY name"
        ) { row in
            let patterns = (row.text(at: 3) ?? "").split(separator: "\n").map(String.init)
            return PickupDirectory(
                name: row.text(at: 0) ?? "", path: row.text(at: 1) ?? "", target: row.text(at: 2) ?? "",
                patterns: patterns, recursive: row.int(at: 4) != 0, undeployOnDelete: row.int(at: 5) != 0,
                markers: row.int(at: 6) != 0,
                ignore: (row.text(at: 7) ?? "").split(separator: "\n").map(String.init), origin: .runtime)
        }
    }

    func saveDirectory(_ d: PickupDirectory) throws {
        try database.transaction {
            try database.execute(
                "INSERT OR REPLACE INTO directories (name, path, target, patterns, recursive, undeploy_on_delete, "
                    + "markers, ignore) VALUES (?,?,?,?,?,?,?,?)",
                [
                    .text(d.name), .text(d.path), .text(d.target), .text(d.patterns.joined(separator: "\n")),
                    SQLiteValue(d.recursive), SQLiteValue(d.undeployOnDelete), SQLiteValue(d.markers),
                    .text(d.ignore.joined(separator: "\n")),
                ])
        }
    }

    func deleteDirectory(_ name: String) throws {
        try database.transaction { try database.execute("DELETE FROM directories WHERE name = ?", [.text(name)]) }
    }
}
