import BerthKit

/// One detection a processor printed (a JSON line), as it goes into acoupi's `detection` and `predicted_tag`.
struct Detection: Sendable, Equatable {
    var label: String
    var score: Double
    var startSeconds: Double
    var endSeconds: Double
    var lowHz: Double?
    var highHz: Double?
    /// Further tags (`key`, `value`) the processor gave; the label is the tag `label`.
    var tags: [Tag] = []

    struct Tag: Sendable, Equatable {
        var key: String
        var value: String
    }
}

/// A processor run taken from the queue.
struct ProcessingClaim: Sendable, Equatable {
    var recording: RecordingRow
    var processor: String
    /// This run's number (1 for the first).
    var attempt: Int
}

/// How a recording's processing went, for the saving decision.
struct ProcessingSummary: Sendable, Equatable {
    /// Processors that failed for good, each with its reason.
    var failures: [(processor: String, reason: String)]
    var bestScore: Double?
    var detections = 0
    /// When its last processor run ended (nil: no processor).
    var finishedUSec: Int64?

    static func == (a: Self, b: Self) -> Bool {
        a.failures.map { "\($0.processor)\u{0}\($0.reason)" } == b.failures.map { "\($0.processor)\u{0}\($0.reason)" }
            && a.bestScore == b.bestScore && a.detections == b.detections && a.finishedUSec == b.finishedUSec
    }
}

/// Recordings by fate, for `Status()` and the heartbeat.
struct RecordingCounts: Sendable, Equatable {
    /// Undecided: processing or the saving filters still to come.
    var pending: Int64 = 0
    /// Every processor finished with it successfully.
    var processed: Int64 = 0
    /// A processor failed for good on it.
    var failed: Int64 = 0
    var kept: Int64 = 0
    var deleted: Int64 = 0
}

extension MetadataStore {
    /// At start: runs cut short by a crash go back to the queue (their output was never committed), and runs of
    /// processors no longer configured are canceled. Returns how many runs were put back.
    @discardableResult
    func reopenInterruptedTasks(processors: [String], atUSec now: Int64) throws -> Int {
        try access(write: true) { db in
            let reopened = try db.execute(
                "UPDATE processing_task SET state = 'pending', updated_usec = ? WHERE state = 'running'",
                [.integer(now)])
            let known = processors.map { SQLiteValue.text($0) }
            let marks = Array(repeating: "?", count: known.count).joined(separator: ", ")
            try db.execute(
                """
                UPDATE processing_task SET state = 'canceled', reason = 'the processor is no longer configured',
                    updated_usec = ?
                WHERE state = 'pending' \(known.isEmpty ? "" : "AND processor NOT IN (\(marks))")
                """, [.integer(now)] + known)
            return reopened
        }
    }

    /// Takes up to `limit` queued runs whose time has come, oldest recording first, and marks them running (one
    /// more attempt) in one transaction. `ready` says whether a recording's file is in place (a row is written
    /// just before its file is renamed into place).
    func claimTasks(limit: Int, atUSec now: Int64, ready: (RecordingRow) -> Bool) throws -> [ProcessingClaim] {
        guard limit > 0 else { return [] }
        return try access(write: true) { db in
            let candidates = try db.query(
                """
                SELECT t.processor, t.attempts, \(Self.recordingColumns.split(separator: ",").map { "r." + $0.trimmed }.joined(separator: ", "))
                FROM processing_task t JOIN recording r ON r.id = t.recording_id
                WHERE t.state = 'pending' AND t.not_before_usec <= ? AND r.deleted_usec IS NULL
                ORDER BY r.start_usec, r.id, t.processor LIMIT ?
                """, [.integer(now), .init(limit * 4)]
            ) { row in
                (processor: row.text(at: 0) ?? "", attempts: row.int(at: 1), recording: Self.recording(offset: 2, row))
            }
            var claims: [ProcessingClaim] = []
            for candidate in candidates where claims.count < limit && ready(candidate.recording) {
                try db.execute(
                    """
                    UPDATE processing_task SET state = 'running', attempts = attempts + 1, updated_usec = ?
                    WHERE recording_id = ? AND processor = ?
                    """, [.integer(now), .text(candidate.recording.id), .text(candidate.processor)])
                claims.append(
                    ProcessingClaim(
                        recording: candidate.recording, processor: candidate.processor, attempt: candidate.attempts + 1)
                )
            }
            return claims
        }
    }

    /// A run succeeded: its detections into acoupi's tables and the run marked done, in one transaction, so a
    /// recording's output is stored once whatever moment a crash picks. Returns the detections stored (none when
    /// the run was canceled meanwhile, e.g. by DeleteRecording).
    func finishTask(_ claim: ProcessingClaim, detections: [Detection], atUSec now: Int64) throws -> Bool {
        try access(write: true) { db in
            let open =
                try db.prepare(
                    "SELECT count(*) FROM processing_task WHERE recording_id = ? AND processor = ? AND state = 'running'"
                ).firstValue([.text(claim.recording.id), .text(claim.processor)])?.integer ?? 0
            guard open > 0 else { return false }
            try db.execute(
                "INSERT INTO model_output (model_name, recording_id, created_on) VALUES (?, ?, ?)",
                [.text(claim.processor), .text(claim.recording.id), .text(Self.text(now))])
            let output = db.lastInsertRowID
            let insertDetection = try db.prepare(
                """
                INSERT INTO detection (prediction_type, start_time_s, end_time_s, low_freq_hz, high_freq_hz,
                    detection_score, model_output_id)
                VALUES ('detection', ?, ?, ?, ?, ?, ?)
                """)
            let insertTag = try db.prepare(
                "INSERT INTO predicted_tag (key, value, confidence_score, detection_id) VALUES (?, ?, ?, ?)")
            for d in detections {
                try insertDetection.run([
                    .real(d.startSeconds), .real(d.endSeconds), .init(d.lowHz), .init(d.highHz), .real(d.score),
                    .integer(output),
                ])
                let detection = db.lastInsertRowID
                try insertTag.run([.text("label"), .text(d.label), .real(d.score), .integer(detection)])
                for tag in d.tags {
                    try insertTag.run([.text(tag.key), .text(tag.value), .null, .integer(detection)])
                }
            }
            try db.execute(
                """
                UPDATE processing_task SET state = 'done', reason = NULL, updated_usec = ?
                WHERE recording_id = ? AND processor = ?
                """, [.integer(now), .text(claim.recording.id), .text(claim.processor)])
            return true
        }
    }

    /// A run failed: back to the queue not before `retryAtUSec`, or failed for good (nil) with the reason.
    func failTask(_ claim: ProcessingClaim, reason: String, retryAtUSec: Int64?, atUSec now: Int64) throws {
        try access(write: true) { db in
            try db.execute(
                """
                UPDATE processing_task SET state = ?, reason = ?, not_before_usec = ?, updated_usec = ?
                WHERE recording_id = ? AND processor = ? AND state = 'running'
                """,
                [
                    .text(retryAtUSec == nil ? "failed" : "pending"), .text(reason), .integer(retryAtUSec ?? 0),
                    .integer(now), .text(claim.recording.id), .text(claim.processor),
                ])
        }
    }

    /// Undecided recordings with nothing left queued or running for them: ready for the saving filters.
    func recordingsToDecide(limit: Int) throws -> [RecordingRow] {
        try access { db in
            try db.query(
                """
                SELECT \(Self.recordingColumns) FROM recording r
                WHERE kept IS NULL AND deleted_usec IS NULL AND NOT EXISTS (
                    SELECT 1 FROM processing_task t WHERE t.recording_id = r.id AND t.state IN ('pending', 'running'))
                ORDER BY start_usec, id LIMIT ?
                """, [.init(limit)], row: Self.recording)
        }
    }

    /// Failed processors and the best detection score of one recording.
    func processingSummary(recordingID id: String) throws -> ProcessingSummary {
        try access { db in
            let failures = try db.query(
                "SELECT processor, ifnull(reason, '') FROM processing_task WHERE recording_id = ? AND state = 'failed'",
                [.text(id)]
            ) { (processor: $0.text(at: 0) ?? "", reason: $0.text(at: 1) ?? "") }
            let stats = try db.query(
                """
                SELECT max(d.detection_score), count(d.id) FROM detection d JOIN model_output m ON m.id = d.model_output_id
                WHERE m.recording_id = ?
                """, [.text(id)]
            ) { (best: $0.optionalDouble(at: 0), count: $0.int(at: 1)) }.first
            let finished = try db.prepare("SELECT max(updated_usec) FROM processing_task WHERE recording_id = ?")
                .firstValue([.text(id)])?.integer
            return ProcessingSummary(
                failures: failures, bestScore: stats?.best, detections: stats?.count ?? 0, finishedUSec: finished)
        }
    }

    /// Records the saving filters' decision. Deleting is `markDeleted` once the file is gone.
    func decide(id: String, kept: Bool, atUSec now: Int64) throws {
        try access(write: true) { db in
            try db.execute(
                "UPDATE recording SET kept = ?, decided_usec = ? WHERE id = ? AND kept IS NULL",
                [.init(kept), .integer(now), .text(id)])
        }
    }

    /// Detections stored for a recording, in order of start (for listings and tests).
    func detections(recordingID id: String) throws -> [(processor: String, detection: Detection)] {
        try access { db in
            try db.query(
                """
                SELECT m.model_name, d.id, d.start_time_s, d.end_time_s, d.low_freq_hz, d.high_freq_hz,
                    d.detection_score,
                    (SELECT value FROM predicted_tag WHERE detection_id = d.id AND key = 'label' LIMIT 1)
                FROM detection d JOIN model_output m ON m.id = d.model_output_id
                WHERE m.recording_id = ? ORDER BY d.start_time_s, d.id
                """, [.text(id)]
            ) { row in
                (
                    processor: row.text(at: 0) ?? "",
                    detection: Detection(
                        label: row.text(at: 7) ?? "", score: row.double(at: 6), startSeconds: row.double(at: 2),
                        endSeconds: row.double(at: 3), lowHz: row.optionalDouble(at: 4),
                        highHz: row.optionalDouble(at: 5))
                )
            }
        }
    }

    /// How many detections each of these recordings has.
    func detectionCounts(recordingIDs ids: [String]) throws -> [String: Int] {
        guard !ids.isEmpty else { return [:] }
        return try access { db in
            let marks = Array(repeating: "?", count: ids.count).joined(separator: ", ")
            let pairs = try db.query(
                """
                SELECT m.recording_id, count(d.id) FROM model_output m JOIN detection d ON d.model_output_id = m.id
                WHERE m.recording_id IN (\(marks)) GROUP BY m.recording_id
                """, ids.map { .text($0) }
            ) { (id: $0.text(at: 0) ?? "", count: $0.int(at: 1)) }
            return Dictionary(pairs.map { ($0.id, $0.count) }, uniquingKeysWith: +)
        }
    }

    /// The processing state of these recordings: `processor: state[ (reason)]` each.
    func taskStates(recordingIDs ids: [String]) throws -> [String: [String]] {
        guard !ids.isEmpty else { return [:] }
        return try access { db in
            let marks = Array(repeating: "?", count: ids.count).joined(separator: ", ")
            let rows = try db.query(
                """
                SELECT recording_id, processor, state, reason, attempts FROM processing_task
                WHERE recording_id IN (\(marks)) ORDER BY processor
                """, ids.map { .text($0) }
            ) { row -> (String, String) in
                let reason = row.text(at: 3).map { " (\($0))" } ?? ""
                return (row.text(at: 0) ?? "", "\(row.text(at: 1) ?? ""): \(row.text(at: 2) ?? "")\(reason)")
            }
            return Dictionary(grouping: rows, by: \.0).mapValues { $0.map(\.1) }
        }
    }

    /// Counts by fate.
    func recordingCounts() throws -> RecordingCounts {
        try access { db in
            func count(_ sql: String) throws -> Int64 { try db.prepare(sql).firstValue()?.integer ?? 0 }
            return RecordingCounts(
                pending: try count("SELECT count(*) FROM recording WHERE kept IS NULL AND deleted_usec IS NULL"),
                processed: try count(
                    """
                    SELECT count(*) FROM (SELECT recording_id FROM processing_task GROUP BY recording_id
                        HAVING min(state = 'done') = 1)
                    """),
                failed: try count(
                    "SELECT count(DISTINCT recording_id) FROM processing_task WHERE state = 'failed'"),
                kept: try count("SELECT count(*) FROM recording WHERE kept = 1 AND deleted_usec IS NULL"),
                deleted: try count("SELECT count(*) FROM recording WHERE deleted_usec IS NOT NULL"))
        }
    }

    /// Every recording whose file should exist: (id, path, start) for the missing-file rescan.
    func liveRecordings() throws -> [(id: String, path: String, startUSec: Int64)] {
        try access { db in
            try db.query("SELECT id, path, start_usec FROM recording WHERE deleted_usec IS NULL") {
                (id: $0.text(at: 0) ?? "", path: $0.text(at: 1) ?? "", startUSec: $0.int64(at: 2))
            }
        }
    }

    /// Runs per processor for a recording, by state (for tests and listings).
    func runCount(recordingID id: String, processor: String) throws -> (attempts: Int, state: String, outputs: Int) {
        try access { db in
            let task =
                try db.query(
                    "SELECT attempts, state FROM processing_task WHERE recording_id = ? AND processor = ?",
                    [.text(id), .text(processor)]
                ) { ($0.int(at: 0), $0.text(at: 1) ?? "") }.first ?? (0, "")
            let outputs =
                try db.prepare("SELECT count(*) FROM model_output WHERE recording_id = ? AND model_name = ?")
                .firstValue([.text(id), .text(processor)])?.integer ?? 0
            return (task.0, task.1, Int(outputs))
        }
    }
}

extension MetadataStore {
    /// A recording row read from `offset` on (the columns of `recordingColumns`).
    static func recording(offset: Int32, _ row: SQLiteStatement) -> RecordingRow {
        RecordingRow(
            id: row.text(at: offset) ?? "", path: row.text(at: offset + 1) ?? "", startUSec: row.int64(at: offset + 2),
            durationSeconds: row.double(at: offset + 3), sampleRate: row.int(at: offset + 4),
            channels: row.int(at: offset + 5), deploymentID: row.text(at: offset + 6),
            sampleFormat: row.text(at: offset + 7) ?? "", sizeBytes: row.int64(at: offset + 8),
            overruns: row.int(at: offset + 9), recovered: row.int(at: offset + 10) != 0,
            kept: row.optionalInt64(at: offset + 11).map { $0 != 0 }, deletedUSec: row.optionalInt64(at: offset + 12),
            deletedReason: row.text(at: offset + 13))
    }
}

extension Substring {
    fileprivate var trimmed: String { String(self).trimmingWhitespace }
}
