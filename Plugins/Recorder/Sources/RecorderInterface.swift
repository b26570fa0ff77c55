import BerthKit

/// `org.berth.Berth1.Recorder` at `/org/berth/Berth1/recorder` (DESIGN.md §2). Each method checks its arguments
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
                    in: [BusArg("name", "s"), BusArg("latitude", "d"), BusArg("longitude", "d"), BusArg("options", "a{sv}")],
                    out: [BusArg("deployment_id", "s")]
                ) { call in
                    try await startDeployment(call)
                },
                .async("StopDeployment") { _ in
                    try await named { try await plugin.engine().stopDeployment() }
                    return []
                },
                .sync("Status", out: [BusArg("status", "a{sv}")]) { _ in
                    [RecorderPublisher.vardict(try plugin.engine().status())]
                },
                .async(
                    "ListRecordings", in: [BusArg("since_usec", "t"), BusArg("limit", "u")],
                    out: [BusArg("recordings", "a(ssttu)")]
                ) { call in
                    try await listRecordings(since: call.uint64(0), limit: call.uint32(1))
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
                throw BerthError.invalidArgument("recorder: StartDeployment option \"force\" must be a boolean, got \(value)")
            }
            force = flag
        }
        let (name, latitude, longitude) = (call.string(0), call.double(1), call.double(2))
        let deployment = try await named {
            try await plugin.engine().startDeployment(name: name, latitude: latitude, longitude: longitude, force: force)
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

    /// Checks the length and the device at once (so a bad call fails as a call), then records in a job whose
    /// `Log` says `saved <id> <path> (<seconds> s)`. Cancelling the job stops the recording early; the audio
    /// captured so far is kept as a file.
    private func recordNow(seconds: Double) async throws -> [DBusValue] {
        guard seconds.isFinite, seconds > 0, seconds <= 86400 else {
            throw BerthError.invalidArgument("recorder: RecordNow length \(seconds) s must be above 0 and at most 86400")
        }
        let engine = try plugin.engine()
        if engine.state == .recording {
            throw BerthError.busy(
                "recorder: ALSA PCM \"\(engine.config.device)\" is recording now; RecordNow waits for no one, try later")
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
