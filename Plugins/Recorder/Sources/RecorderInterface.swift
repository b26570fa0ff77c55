import BerthKit

/// `org.berth.Berth1.Recorder` at `/org/berth/Berth1/recorder` (docs/api). Each method checks its arguments
/// and calls the running `RecorderEngine`; errors are `BerthError`s whose sentences name the recorder.
///
/// `ListRecordings(t since_usec, u limit) -> a(ssttu)`: recordings that started at or after `since_usec`, oldest
/// first, at most `limit` (0: 1000), each `(id, path, start_usec, duration_usec, sample_rate_hz)`.
struct RecorderInterface: Sendable {
    static let name = "org.berth.Berth1.Recorder"
    let plugin: RecorderPlugin
    let context: PluginContext

    var busInterface: BusInterface {
        BusInterface(
            Self.name,
            methods: [
                .async("Check", out: [BusArg("passed", "b"), BusArg("checks", "a(sss)")]) { _ in
                    try await check()
                },
                .async(
                    "StartDeployment",
                    in: [
                        BusArg("name", "s"), BusArg("latitude", "d"), BusArg("longitude", "d"),
                        BusArg("options", "a{sv}"),
                    ],
                    out: [BusArg("deployment_id", "s")]
                ) { call in
                    try await startDeployment(call)
                },
                .async("StopDeployment") { _ in
                    try await named { try await plugin.engine().stopDeployment() }
                    return []
                },
                // Async, the status read on a worker: it checks the config, which reads the time zone's file.
                .async("Status", out: [BusArg("status", "a{sv}")]) { _ in
                    let engine = try plugin.engine()
                    let status = try await OSThread.run(name: "berth-rec-status") { engine.status() }
                    return [RecorderPublisher.vardict(status)]
                },
                .async(
                    "ListRecordings", in: [BusArg("since_usec", "t"), BusArg("limit", "u")],
                    out: [BusArg("recordings", "a(ssttu)")]
                ) { call in
                    try await listRecordings(since: call.uint64(0), limit: call.uint32(1))
                },
                .async(
                    "QueryRecordings", in: [BusArg("options", "a{sv}")], out: [BusArg("recordings", "aa{sv}")]
                ) { call in
                    try await queryRecordings(call.options(0))
                },
                .async("Rescan", out: [BusArg("missing", "u")]) { _ in
                    let missing = try await named { try await plugin.engine().rescan() }
                    return [.uint32(UInt32(clamping: missing))]
                },
                .async("DeleteRecording", in: [BusArg("id", "s")]) { call in
                    let id = call.string(0)
                    try await named { try await plugin.engine().deleteRecording(id: id) }
                    return []
                },
                .async("RecordNow", in: [BusArg("seconds", "d")], out: [BusArg("job_id", "u"), BusArg("job", "o")]) {
                    call in
                    try await recordNow(seconds: call.double(0))
                },
            ],
            properties: [
                BusProperty("State", "s", initial: .string(RecorderState.idle.rawValue)),
                BusProperty("Deployment", "a{sv}", initial: .vardict([])),
                BusProperty("Device", "s", initial: .string("")),
                BusProperty("SampleRate", "u", initial: .uint32(0)),
                BusProperty("Channels", "u", initial: .uint32(0)),
                BusProperty("RecordingsCount", "t", initial: .uint64(0)),
                BusProperty("LastRecording", "s", initial: .string("")),
                BusProperty("FreeBytes", "t", initial: .uint64(0)),
                BusProperty("LastHeartbeatUSec", "t", initial: .uint64(0)),
            ],
            signals: [
                BusSignal("RecordingStarted", [BusArg("path", "s"), BusArg("start_usec", "t")]),
                BusSignal(
                    "RecordingSaved",
                    [BusArg("id", "s"), BusArg("path", "s"), BusArg("start_usec", "t"), BusArg("seconds", "d")]),
                BusSignal("Heartbeat", [BusArg("status", "a{sv}")]),
                BusSignal(
                    "Detection",
                    [
                        BusArg("recording_id", "s"), BusArg("label", "s"), BusArg("score", "d"), BusArg("start_s", "d"),
                        BusArg("end_s", "d"),
                    ]),
                BusSignal("RecordingDeleted", [BusArg("id", "s"), BusArg("reason", "s")]),
            ])
    }

    private func check() async throws -> [DBusValue] {
        let results = try await plugin.engine().check()
        return [
            .bool(results.allSatisfy(\.passed)),
            .structs("(sss)", results.map { [.string($0.name), .string($0.status), .string($0.message)] }),
        ]
    }

    private func startDeployment(_ call: BusCall) async throws -> [DBusValue] {
        var force = false
        for (key, value) in call.options(3) {
            guard key == "force" else {
                throw BerthError.invalidArgument(
                    "recorder: StartDeployment has no option \"\(key)\" (known options: force)")
            }
            guard let flag = value.bool else {
                throw BerthError.invalidArgument(
                    "recorder: StartDeployment option \"force\" must be a boolean, got \(value)")
            }
            force = flag
        }
        let (name, latitude, longitude) = (call.string(0), call.double(1), call.double(2))
        let deployment = try await named {
            try await plugin.engine().startDeployment(
                name: name, latitude: latitude, longitude: longitude, force: force)
        }
        return [.string(deployment.id)]
    }

    private func listRecordings(since: UInt64, limit: UInt32) async throws -> [DBusValue] {
        let rows = try await named { try await plugin.engine().listRecordings(sinceUSec: since, limit: limit) }
        return [
            .structs(
                "(ssttu)",
                rows.map { row in
                    [
                        .string(row.id), .string(row.path), .uint64(UInt64(max(0, row.startUSec))),
                        .uint64(UInt64(max(0, (row.durationSeconds * 1e6).rounded()))),
                        .uint32(UInt32(clamping: row.sampleRate)),
                    ]
                })
        ]
    }

    /// `QueryRecordings(a{sv} options) -> aa{sv}`: options `since_usec` (t), `limit` (u, 0: 1000),
    /// `newest_first` (b, default true), `include_deleted` (b, default true); each recording `id`, `path`,
    /// `start_usec`, `duration_usec`, `sample_rate`, `status` (pending, kept, deleted), `deleted_usec`, `reason`
    /// (why it was deleted), `detections` (u), `processing` (as, `processor: state (reason)`).
    private func queryRecordings(_ options: [String: DBusValue]) async throws -> [DBusValue] {
        var since: UInt64 = 0
        var limit: UInt32 = 0
        var newestFirst = true
        var includeDeleted = true
        for (key, value) in options {
            switch (key, value) {
            case ("since_usec", .uint64(let v)): since = v
            case ("limit", .uint32(let v)): limit = v
            case ("newest_first", .bool(let v)): newestFirst = v
            case ("include_deleted", .bool(let v)): includeDeleted = v
            default:
                throw BerthError.invalidArgument(
                    "recorder: QueryRecordings option \(BerthError.quote(key)) = \(value) is unknown or of the wrong "
                        + "type (since_usec t, limit u, newest_first b, include_deleted b)")
            }
        }
        let listed = try await named {
            try await plugin.engine().queryRecordings(
                sinceUSec: since, limit: limit, newestFirst: newestFirst, includeDeleted: includeDeleted)
        }
        return [
            .array(
                element: "a{sv}",
                listed.map { item in
                    let row = item.row
                    return .vardict([
                        ("id", .string(row.id)), ("path", .string(row.path)),
                        ("start_usec", .uint64(UInt64(max(0, row.startUSec)))),
                        ("duration_usec", .uint64(UInt64(max(0, (row.durationSeconds * 1e6).rounded())))),
                        ("sample_rate", .uint32(UInt32(clamping: row.sampleRate))), ("status", .string(row.status)),
                        ("deleted_usec", .uint64(UInt64(max(0, row.deletedUSec ?? 0)))),
                        ("reason", .string(row.deletedReason ?? "")),
                        ("detections", .uint32(UInt32(clamping: item.detections))),
                        ("processing", .strings(item.processing)),
                    ])
                })
        ]
    }

    /// Checks the length and the device at once (so a bad call fails as a call), then records in a job whose
    /// `Log` says `saved <id> <path> (<seconds> s)`. Cancelling the job stops the recording early; the audio
    /// captured so far is kept as a file.
    private func recordNow(seconds: Double) async throws -> [DBusValue] {
        let seconds = try await named { try RecorderLimits.recordNow(seconds) }
        let engine = try plugin.engine()
        if engine.state == .recording {
            throw BerthError.busy(
                "recorder: ALSA PCM \"\(engine.config.device)\" is recording now; RecordNow waits for no one, try later"
            )
        }
        let job = try await context.startJob("record-now") { job in
            job.log("recording \(seconds) s from ALSA PCM \"\(engine.config.device)\"")
            let row = try await named { try await engine.recordNow(seconds: seconds) }
            job.log("saved \(row.id) \(row.path) (\(row.durationSeconds) s)")
        }
        return job.reply
    }
}

/// Runs an engine call and prefixes its error's sentence with `recorder: ` so every message names the object.
@discardableResult
func named<T>(_ body: () async throws -> T) async throws -> T {
    do { return try await body() } catch {
        let e = BerthError.wrapping(error)
        throw e.message.hasPrefix("recorder") ? e : BerthError(e.code, "recorder: " + e.message)
    }
}
