/// The recorder's configuration (the `recorder:` section of berth.yaml, keys in `snake_case` as noted). A plain
/// value with acoupi-like defaults; `validate()` says everything that is wrong, as `.invalidConfig`.
struct RecorderConfig: Sendable, Equatable {
    /// ALSA PCM to capture from (`device`).
    var device = "default"
    /// Inline ALSA configuration (`alsa_config`): when set, `device` is looked up in this text alone (opened with
    /// `snd_pcm_open_lconf`), e.g. `pcm.fixture { type file; slave { pcm { type null } } ... }` for tests.
    var alsaConfig: String?
    /// Frames per second (`sample_rate`).
    var sampleRate = 48000
    /// Interleaved channels (`channels`).
    var channels = 1
    /// ALSA sample format name (`format`): S16_LE, S24_LE (24 bits in 32), S24_3LE or S32_LE.
    var format = "S16_LE"
    /// ALSA period and buffer (`period_seconds`, `buffer_seconds`): a larger buffer rides out slow storage.
    var periodSeconds = 0.1
    var bufferSeconds = 2.0
    /// Folder holding `recordings/` and `metadata.db` (`storage`); the plugin sets it from the state folder.
    var storagePath = ""
    /// Time zone of the `YYYY/MM/DD` folders and `YYYYmmdd_HHMMSS` stamps of file names (`file_timezone`).
    var fileTimeZone = "UTC"
    /// When to record (`schedule`).
    var schedule = ScheduleConfig()
    /// Free space to keep on the storage filesystem (`min_free_bytes`), and what to do below it
    /// (`low_disk_policy`).
    var minFreeBytes: UInt64 = 256 << 20
    var lowDiskPolicy = LowDiskPolicy.skip
    /// Seconds between heartbeats (`heartbeat_interval`).
    var heartbeatInterval = 60.0
    /// A partial file found at start holding at least this much audio is finalised, a shorter one removed
    /// (`recovery_min_seconds`).
    var recoveryMinSeconds = 0.5
    /// Backoff between attempts to reopen a failed device: doubles from the first to the last (`retry_initial`,
    /// `retry_max`, seconds).
    var retryInitialSeconds = 1.0
    var retryMaxSeconds = 60.0
    /// Pace reads to the wall clock (`pace_realtime`): only for PCMs that are not paced by hardware, such as
    /// a `type file` PCM replaying a recording.
    var paceRealtime = false
    /// Let the capture wait for a writer that is behind instead of dropping audio (`wait_for_writer`): only for
    /// PCMs not paced by hardware, for benchmarks and replays of recordings.
    var waitForWriter = false
    /// Commands run on each saved recording (`processing`).
    var processing = ProcessingConfig()
    /// Which recordings are kept after processing (`saving`).
    var saving = SavingConfig()
    /// Seconds between checks that every listed recording's file still exists (`rescan_interval`): a file removed
    /// by hand is marked deleted with the reason "missing".
    var rescanIntervalSeconds = 300.0

    enum LowDiskPolicy: String, Sendable, Equatable, CaseIterable {
        /// Stop recording (state `error`) until the deployment is restarted.
        case stop
        /// Skip recordings while space is short; resume by itself when space comes back.
        case skip
        /// Delete the oldest recordings (file and row) until there is room again.
        case deleteOldest = "delete-oldest"
    }
}

/// When to record (the `schedule:` section).
struct ScheduleConfig: Sendable, Equatable {
    /// Daily windows in `timezone` (`windows: [{start: "HH:MM", end: "HH:MM"}]`): `end` before `start` spans
    /// midnight; `end == start` is the whole day. The default is the whole day, said plainly.
    var windows = [WindowConfig(start: "00:00", end: "00:00")]
    /// IANA zone of the windows (`timezone`).
    var timezone = "UTC"
    /// Seconds per recording, or per segment when continuous (`duration`).
    var duration = 3.0
    /// Seconds from the start of one recording to the next (`interval`); ignored when continuous.
    var interval = 10.0
    /// Record without gaps inside the windows, split into files of `duration` (`continuous`).
    var continuous = false
}

struct WindowConfig: Sendable, Equatable {
    var start: String
    var end: String
}
