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
        """
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
