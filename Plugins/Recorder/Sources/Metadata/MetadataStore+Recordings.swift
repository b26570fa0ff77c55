import BerthKit

extension MetadataStore {
    static let recordingColumns = """
        id, path, start_usec, duration_s, samplerate_hz, audio_channels, deployment_id, sample_format, size_bytes,
        overruns, recovered, kept, deleted_usec, deleted_reason
        """

    static func recording(_ row: SQLiteStatement) -> RecordingRow { recording(offset: 0, row) }

    /// Stores a recording and, in the same transaction, queues it for every processor: a recording is in the
    /// queue exactly when its row exists, whatever moment a crash picks. With no processor and no saving filter
    /// it is kept at once.
    func insertRecording(_ r: RecordingRow) throws {
        try access(write: true) { db in
            let kept: SQLiteValue = keepAtInsert ? .integer(1) : .null
            let decided: SQLiteValue = keepAtInsert ? .integer(r.startUSec) : .null
            try db.execute(
                """
                INSERT INTO recording (id, path, datetime, duration_s, samplerate_hz, audio_channels, deployment_id,
                    start_usec, sample_format, size_bytes, overruns, recovered, kept, decided_usec)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [
                    .text(r.id), .text(r.path), .text(Self.text(r.startUSec)), .real(r.durationSeconds),
                    .init(r.sampleRate), .init(r.channels), .init(r.deploymentID), .integer(r.startUSec),
                    .text(r.sampleFormat), .integer(r.sizeBytes), .init(r.overruns), .init(r.recovered), kept, decided,
                ])
            for processor in processors {
                try db.execute(
                    """
                    INSERT INTO processing_task (recording_id, processor, state, updated_usec)
                    VALUES (?, ?, 'pending', ?)
                    """, [.text(r.id), .text(processor), .integer(r.startUSec)])
            }
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

    /// Recordings that started at or after `sinceUSec`, oldest first, at most `limit`, deleted ones included.
    func recordings(sinceUSec: Int64, limit: Int) throws -> [RecordingRow] {
        try recordings(sinceUSec: sinceUSec, limit: limit, newestFirst: false, includeDeleted: true)
    }

    /// Recordings that started at or after `sinceUSec`: newest first when `newestFirst` (the newest `limit`),
    /// deleted ones only when `includeDeleted`.
    func recordings(sinceUSec: Int64, limit: Int, newestFirst: Bool, includeDeleted: Bool) throws -> [RecordingRow] {
        let order = newestFirst ? "start_usec DESC, id DESC" : "start_usec, id"
        let deleted = includeDeleted ? "" : "AND deleted_usec IS NULL"
        return try access { db in
            try db.query(
                "SELECT \(Self.recordingColumns) FROM recording WHERE start_usec >= ? \(deleted) ORDER BY \(order) LIMIT ?",
                [.integer(sinceUSec), .init(limit)], row: Self.recording)
        }
    }

    /// The oldest decided recordings whose files still exist (for the `delete-oldest` low-disk policy): a recording
    /// still waiting for its processors or the saving filters is not among them.
    func oldestRecordings(limit: Int) throws -> [RecordingRow] {
        try access { db in
            try db.query(
                """
                SELECT \(Self.recordingColumns) FROM recording WHERE deleted_usec IS NULL AND kept IS NOT NULL
                ORDER BY start_usec, id LIMIT ?
                """, [.init(limit)], row: Self.recording)
        }
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

    /// Marks a recording's file deleted (the row stays, with the time and the reason) and cancels what was still
    /// queued for it. False when it was already marked.
    @discardableResult
    func markDeleted(id: String, reason: String, atUSec usec: Int64) throws -> Bool {
        try access(write: true) { db in
            let changed = try db.execute(
                "UPDATE recording SET deleted_usec = ?, deleted_reason = ? WHERE id = ? AND deleted_usec IS NULL",
                [.integer(usec), .text(reason), .text(id)])
            guard changed > 0 else { return false }
            try db.execute(
                """
                UPDATE processing_task SET state = 'canceled', reason = ?, updated_usec = ?
                WHERE recording_id = ? AND state IN ('pending', 'running')
                """, [.text("the recording was deleted: \(reason)"), .integer(usec), .text(id)])
            return true
        }
    }

    /// The low-disk policy's deletion: the row stays, marked.
    func deleteRecording(id: String, reason: String = "low disk (delete-oldest)", atUSec usec: Int64? = nil) throws {
        try markDeleted(id: id, reason: reason, atUSec: usec ?? Int64(SystemClock.wallUSec()))
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
