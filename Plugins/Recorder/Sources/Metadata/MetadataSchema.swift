/// The schema of `metadata.db`, one script per version (`PRAGMA user_version` counts how many have run).
///
/// Version 1 holds acoupi's tables with acoupi's column names — `deployment(id, name, started_on, ended_on,
/// latitude, longitude)` and `recording(id, path, datetime, duration_s, samplerate_hz, audio_channels,
/// deployment_id)`, datetimes as UTC text `YYYY-MM-DD HH:MM:SS.ffffff` — plus berth's columns (the same times
/// as integer microseconds for ordering and the D-Bus API, the sample format, size, overruns, whether crash
/// recovery finished the file) and a `heartbeat` table.
enum MetadataSchema {
    static let migrations: [String] = [
        """
        CREATE TABLE deployment (
            id TEXT PRIMARY KEY NOT NULL,
            name TEXT NOT NULL,
            started_on TEXT NOT NULL,
            ended_on TEXT,
            latitude REAL NOT NULL,
            longitude REAL NOT NULL,
            started_usec INTEGER NOT NULL,
            ended_usec INTEGER
        );
        -- At most one active deployment: every active row has the same key.
        CREATE UNIQUE INDEX deployment_single_active ON deployment (ifnull(ended_usec, 0)) WHERE ended_usec IS NULL;
        CREATE TABLE recording (
            id TEXT PRIMARY KEY NOT NULL,
            path TEXT NOT NULL UNIQUE,
            datetime TEXT NOT NULL,
            duration_s REAL NOT NULL,
            samplerate_hz INTEGER NOT NULL,
            audio_channels INTEGER NOT NULL,
            deployment_id TEXT REFERENCES deployment (id),
            start_usec INTEGER NOT NULL,
            sample_format TEXT NOT NULL,
            size_bytes INTEGER NOT NULL,
            overruns INTEGER NOT NULL DEFAULT 0,
            recovered INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX recording_start ON recording (start_usec);
        CREATE INDEX recording_deployment ON recording (deployment_id);
        CREATE TABLE heartbeat (
            id INTEGER PRIMARY KEY,
            time TEXT NOT NULL,
            time_usec INTEGER NOT NULL,
            state TEXT NOT NULL,
            deployment_id TEXT,
            last_recording_usec INTEGER,
            recordings INTEGER NOT NULL,
            overruns INTEGER NOT NULL,
            free_bytes INTEGER,
            errors TEXT NOT NULL
        );
        CREATE INDEX heartbeat_time ON heartbeat (time_usec);
        """,
        // Version 2: processing and saving (issue 17). A recording's fate: `kept` NULL while undecided, 1 kept,
        // 0 deleted by the saving filters; `deleted_usec` and `deleted_reason` once its file is gone (filters, a
        // person's DeleteRecording, the low-disk policy, or "missing" when it was removed by hand). The queue of
        // processor runs is `processing_task`, one row per recording and processor, written in the recording's own
        // transaction. acoupi's `model_output`, `detection` and `predicted_tag` hold what processors found.
        """
        ALTER TABLE recording ADD COLUMN kept INTEGER;
        ALTER TABLE recording ADD COLUMN decided_usec INTEGER;
        ALTER TABLE recording ADD COLUMN deleted_usec INTEGER;
        ALTER TABLE recording ADD COLUMN deleted_reason TEXT;
        UPDATE recording SET kept = 1, decided_usec = start_usec;
        CREATE INDEX recording_undecided ON recording (start_usec) WHERE kept IS NULL AND deleted_usec IS NULL;
        CREATE TABLE processing_task (
            recording_id TEXT NOT NULL REFERENCES recording (id),
            processor TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed', 'canceled')),
            attempts INTEGER NOT NULL DEFAULT 0,
            not_before_usec INTEGER NOT NULL DEFAULT 0,
            reason TEXT,
            updated_usec INTEGER NOT NULL,
            PRIMARY KEY (recording_id, processor)
        );
        CREATE INDEX processing_task_open ON processing_task (state, not_before_usec) WHERE state IN ('pending', 'running');
        CREATE TABLE model_output (
            id INTEGER PRIMARY KEY,
            model_name TEXT NOT NULL,
            recording_id TEXT NOT NULL REFERENCES recording (id),
            created_on TEXT NOT NULL,
            UNIQUE (recording_id, model_name)
        );
        CREATE TABLE detection (
            id INTEGER PRIMARY KEY,
            prediction_type TEXT NOT NULL,
            start_time_s REAL,
            end_time_s REAL,
            low_freq_hz REAL,
            high_freq_hz REAL,
            detection_score REAL NOT NULL,
            model_output_id INTEGER NOT NULL REFERENCES model_output (id)
        );
        CREATE INDEX detection_output ON detection (model_output_id);
        CREATE TABLE predicted_tag (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            confidence_score REAL,
            detection_id INTEGER NOT NULL REFERENCES detection (id)
        );
        CREATE INDEX predicted_tag_detection ON predicted_tag (detection_id);
        """,
    ]
}

/// A field deployment: where and since when the recorder runs.
struct Deployment: Sendable, Equatable {
    var id: String
    var name: String
    var latitude: Double
    var longitude: Double
    var startedUSec: Int64
    var endedUSec: Int64?

    var isActive: Bool { endedUSec == nil }
}

/// One finished recording as the database holds it.
struct RecordingRow: Sendable, Equatable {
    var id: String
    var path: String
    var startUSec: Int64
    var durationSeconds: Double
    var sampleRate: Int
    var channels: Int
    var deploymentID: String?
    var sampleFormat: String
    var sizeBytes: Int64
    var overruns: Int
    /// Finished by crash recovery rather than by the writer.
    var recovered: Bool
    /// The saving filters' decision: nil while undecided (processing or filters pending), true kept, false not.
    var kept: Bool? = nil
    /// When the file was deleted, and why ("saving filters: ...", "deleted by request", "low disk", "missing").
    var deletedUSec: Int64? = nil
    var deletedReason: String? = nil

    /// `pending`, `kept` or `deleted` (which includes files found missing).
    var status: String { deletedUSec != nil ? "deleted" : kept == nil ? "pending" : "kept" }
}

/// One heartbeat: what the recorder was doing, measured rather than assumed.
struct HeartbeatRow: Sendable, Equatable {
    var timeUSec: Int64
    var state: String
    var deploymentID: String?
    var lastRecordingUSec: Int64?
    /// Recordings saved and overruns counted since the previous heartbeat.
    var recordings: Int
    var overruns: Int
    var freeBytes: UInt64?
    var errors: [String]
}
