import BerthKit

extension MetadataStore {
    private static let recordingColumns = """
        id, path, start_usec, duration_s, samplerate_hz, audio_channels, deployment_id, sample_format, size_bytes,
        overruns, recovered
        """

    private static func recording(_ row: SQLiteStatement) -> RecordingRow {
        RecordingRow(
            id: row.text(at: 0) ?? "", path: row.text(at: 1) ?? "", startUSec: row.int64(at: 2),
            durationSeconds: row.double(at: 3), sampleRate: row.int(at: 4), channels: row.int(at: 5),
            deploymentID: row.text(at: 6), sampleFormat: row.text(at: 7) ?? "", sizeBytes: row.int64(at: 8),
            overruns: row.int(at: 9), recovered: row.int(at: 10) != 0)
    }

    func insertRecording(_ r: RecordingRow) throws {
        try access(write: true) { db in
            try db.execute(
                """
                INSERT INTO recording (id, path, datetime, duration_s, samplerate_hz, audio_channels, deployment_id,
                    start_usec, sample_format, size_bytes, overruns, recovered)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [
                    .text(r.id), .text(r.path), .text(Self.text(r.startUSec)), .real(r.durationSeconds),
                    .init(r.sampleRate), .init(r.channels), .init(r.deploymentID), .integer(r.startUSec),
                    .text(r.sampleFormat), .integer(r.sizeBytes), .init(r.overruns), .init(r.recovered),
                ])
        }
    }

    func recording(id: String) throws -> RecordingRow? {
        try access { db in
            try db.query(
                "SELECT \(Self.recordingColumns) FROM recording WHERE id = ?", [.text(id)], row: Self.recording
            )
            .first
        }
    }

    /// Recordings that started at or after `sinceUSec`, oldest first, at most `limit`.
    func recordings(sinceUSec: Int64, limit: Int) throws -> [RecordingRow] {
        try access { db in
            try db.query(
                "SELECT \(Self.recordingColumns) FROM recording WHERE start_usec >= ? ORDER BY start_usec, id LIMIT ?",
                [.integer(sinceUSec), .init(limit)], row: Self.recording)
        }
    }

    /// The oldest recordings (for the `delete-oldest` low-disk policy).
    func oldestRecordings(limit: Int) throws -> [RecordingRow] {
        try recordings(sinceUSec: .min, limit: limit)
    }

    func latestRecording() throws -> RecordingRow? {
        try access { db in
            try db.query(
                "SELECT \(Self.recordingColumns) FROM recording ORDER BY start_usec DESC, id DESC LIMIT 1",
                row: Self.recording
            ).first
        }
    }

    func recordingCount(deploymentID: String? = nil) throws -> Int64 {
        try access { db in
            let value =
                if let deploymentID {
                    try db.prepare("SELECT count(*) FROM recording WHERE deployment_id = ?").firstValue([
                        .text(deploymentID)
                    ])
                } else {
                    try db.prepare("SELECT count(*) FROM recording").firstValue()
                }
            return value?.integer ?? 0
        }
    }

    func deleteRecording(id: String) throws {
        try access(write: true) { db in
            try db.execute("DELETE FROM recording WHERE id = ?", [.text(id)])
        }
    }

    // MARK: Heartbeats

    /// Heartbeats older than this are pruned when a new one is stored.
    static let heartbeatRetentionUSec: Int64 = 30 * 86400 * 1_000_000

    func insertHeartbeat(_ h: HeartbeatRow) throws {
        try access(write: true) { db in
            try db.execute(
                """
                INSERT INTO heartbeat (time, time_usec, state, deployment_id, last_recording_usec, recordings, overruns,
                    free_bytes, errors)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [
                    .text(Self.text(h.timeUSec)), .integer(h.timeUSec), .text(h.state), .init(h.deploymentID),
                    .init(h.lastRecordingUSec), .init(h.recordings), .init(h.overruns),
                    h.freeBytes.map { .init($0) } ?? .null, .text(h.errors.joined(separator: "\n")),
                ])
            try db.execute(
                "DELETE FROM heartbeat WHERE time_usec < ?", [.integer(h.timeUSec - Self.heartbeatRetentionUSec)])
        }
    }

    /// The newest heartbeats, newest first.
    func heartbeats(limit: Int) throws -> [HeartbeatRow] {
        try access { db in
            try db.query(
                """
                SELECT time_usec, state, deployment_id, last_recording_usec, recordings, overruns, free_bytes, errors
                FROM heartbeat ORDER BY time_usec DESC, id DESC LIMIT ?
                """, [.init(limit)]
            ) { row in
                let errors = row.text(at: 7) ?? ""
                return HeartbeatRow(
                    timeUSec: row.int64(at: 0), state: row.text(at: 1) ?? "", deploymentID: row.text(at: 2),
                    lastRecordingUSec: row.optionalInt64(at: 3), recordings: row.int(at: 4), overruns: row.int(at: 5),
                    freeBytes: row.optionalInt64(at: 6).map { UInt64(bitPattern: $0) },
                    errors: errors.isEmpty ? [] : errors.split(separator: "\n").map(String.init))
            }
        }
    }
}
