import BerthKit
import Glibc
import Synchronization

/// Runs one processor on one recording as a one-shot unit of BerthKit's supervisor: its own process group,
/// `PR_SET_PDEATHSIG` so a killed daemon takes it along, stdin from /dev/null, stdout and stderr into a file read
/// back when it ends, and SIGTERM then SIGKILL to the whole group when its `timeout` passes.
///
/// The command is `command... <wav path>`, with the recording in the environment: `BERTH_RECORDING_ID`,
/// `BERTH_RECORDING_PATH`, `BERTH_RECORDING_START_USEC`, `BERTH_RECORDING_START` (UTC, `YYYY-MM-DD HH:MM:SS.ffffff`),
/// `BERTH_RECORDING_DURATION_S`, `BERTH_RECORDING_SAMPLE_RATE`, `BERTH_RECORDING_CHANNELS`, `BERTH_DEPLOYMENT_ID`,
/// `BERTH_LATITUDE`, `BERTH_LONGITUDE` (empty without a deployment), `BERTH_PROCESSOR`, `BERTH_ATTEMPT`.
struct ProcessorRunner: Sendable {
    let supervisor: Supervisor
    /// Output files live here while a run goes on.
    let outputFolder: String
    /// Output larger than this fails the run (detections are lines of JSON; megabytes of them are a bug).
    static let outputLimit = 16 << 20
    private static let serial = Mutex<UInt64>(0)

    enum Outcome: Sendable, Equatable {
        case detections([Detection], diagnostics: [String])
        case failed(String)
    }

    func run(
        _ processor: ProcessorConfig, _ claim: ProcessingClaim, deployment: Deployment?
    ) async -> Outcome {
        let n = Self.serial.withLock { n -> UInt64 in
            n += 1
            return n
        }
        let output = "\(outputFolder)/\(processor.name).\(getpid()).\(n).out"
        defer { unlink(output) }
        let r = claim.recording
        var environment = processor.environment
        environment["BERTH_RECORDING_ID"] = r.id
        environment["BERTH_RECORDING_PATH"] = r.path
        environment["BERTH_RECORDING_START_USEC"] = String(r.startUSec)
        environment["BERTH_RECORDING_START"] = MetadataStore.text(r.startUSec)
        environment["BERTH_RECORDING_DURATION_S"] = String(r.durationSeconds)
        environment["BERTH_RECORDING_SAMPLE_RATE"] = String(r.sampleRate)
        environment["BERTH_RECORDING_CHANNELS"] = String(r.channels)
        environment["BERTH_DEPLOYMENT_ID"] = deployment?.id ?? ""
        environment["BERTH_LATITUDE"] = deployment.map { String($0.latitude) } ?? ""
        environment["BERTH_LONGITUDE"] = deployment.map { String($0.longitude) } ?? ""
        environment["BERTH_PROCESSOR"] = processor.name
        environment["BERTH_ATTEMPT"] = String(claim.attempt)
        let process = supervisor.process(
            .oneShot(
                name: "\(processor.name)-\(r.id)", kind: "processor", argv: processor.command + [r.path],
                environment: environment, logPath: output))
        let finished: SupervisorSnapshot?
        do {
            finished = try await process.runToEnd(timeout: .microseconds(Int64(processor.timeoutSeconds * 1e6)))
        } catch {
            return .failed("processor \"\(processor.name)\" cannot start: \(BerthError.wrapping(error).message)")
        }
        guard let finished else {
            if Task.isCancelled { return .failed("processor \"\(processor.name)\" was stopped with the recorder") }
            return .failed(
                "processor \"\(processor.name)\" timed out after \(processor.timeoutSeconds) s; its process group was killed"
            )
        }
        let text: String
        do {
            let bytes = try await OSThread.run(name: "berth-rec-output") {
                try FileIO.readAll(path: output, limit: Self.outputLimit)
            }
            text = String(decoding: bytes, as: UTF8.self)
        } catch {
            return .failed(
                "processor \"\(processor.name)\": cannot read its output: \(BerthError.wrapping(error).message)")
        }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        guard finished.exitStatus == 0 else {
            let what =
                finished.exitStatus < 0
                ? "was killed by signal \(-finished.exitStatus)" : "exited with status \(finished.exitStatus)"
            let last = lines.last(where: { !$0.hasPrefix("{") }).map { ": " + BerthError.quote($0) } ?? ""
            return .failed("processor \"\(processor.name)\" \(what)\(last)")
        }
        do {
            let parsed = try DetectionParser.parse(lines, processor: processor.name)
            return .detections(parsed.detections, diagnostics: parsed.diagnostics)
        } catch {
            return .failed(BerthError.wrapping(error).message)
        }
    }
}
