import BerthKit

/// What one session records: how many frames in all (nil: until stopped), cut into files of `segmentFrames`.
struct SessionPlan: Sendable, Equatable {
    var totalFrames: Int64?
    var segmentFrames: Int64
    var deploymentID: String?
    /// Why it runs, for the log: "schedule", "continuous", "record-now".
    var reason: String
}

/// How a session ended.
struct SessionResult: Sendable {
    var opened = false
    var capturedFrames: Int64 = 0
    var savedCount = 0
    var lastSaved: RecordingRow?
    var overruns = 0
    var skippedSegments = 0
    /// The device or storage failed.
    var error: BerthError?
    /// The low-disk policy said stop.
    var stopReason: String?
    /// CPU time of the capture and writer threads (capture + WAV + database), for benchmarks.
    var cpuUSec: Int64 = 0
}

/// The writer thread's logic, free of threads: consumes capture items in order, cuts the frame stream into
/// segments at exact frame boundaries (no sample lost or repeated between files), writes each through a
/// `WAVWriter`, stores its row and publishes it under its final name.
///
/// Order for each file: finish (header, fsync) → row in the database → rename into place. A crash at any point
/// leaves a partial file that recovery finishes (or whose row already exists).
final class SegmentWriter {
    enum Admission: Sendable, Equatable {
        case write
        case skip(String)
        case stop(String)
    }

    struct Hooks: Sendable {
        /// Asked before each file with the bytes it will take (the low-disk policy).
        var admit: @Sendable (_ expectedBytes: UInt64) -> Admission = { _ in .write }
        var started: @Sendable (_ id: String, _ path: String, _ startUSec: Int64) -> Void = { _, _, _ in }
        var saved: @Sendable (RecordingRow) -> Void = { _ in }
    }

    private struct Segment {
        var id: String
        var writer: WAVWriter
        var startUSec: Int64
        var finalPath: String
        var overruns: Int
    }

    let plan: SessionPlan
    let format: AudioFormat
    let layout: RecordingLayout
    let store: MetadataStore
    let hooks: Hooks
    let requestStop: @Sendable () -> Void
    let logger: Logger
    private(set) var result = SessionResult()
    private var current: Segment?
    private var anchor: (usec: Int64, frame: Int64)?
    private var skippedSegmentStart: Int64?
    private var pendingOverruns = 0
    private var discarding = false

    init(
        plan: SessionPlan, format: AudioFormat, layout: RecordingLayout, store: MetadataStore, hooks: Hooks,
        logger: Logger, requestStop: @escaping @Sendable () -> Void
    ) {
        self.plan = plan
        self.format = format
        self.layout = layout
        self.store = store
        self.hooks = hooks
        self.logger = logger
        self.requestStop = requestStop
    }

    /// Handles one item; false once the session is over.
    func handle(_ item: CaptureItem) -> Bool {
        switch item {
        case .opened:
            result.opened = true
        case .chunk(let chunk):
            if !discarding { write(chunk) }
        case .overrun(let frame, let writerBehind):
            result.overruns += 1
            if current != nil { current!.overruns += 1 } else { pendingOverruns += 1 }
            logger.warning(
                "recorder: samples lost at frame \(frame) (\(writerBehind ? "storage too slow" : "device overrun"))")
        case .ended(let frames):
            result.capturedFrames = frames
            finishCurrent()
            return false
        case .failed(let error, let frames):
            result.capturedFrames = frames
            result.error = error
            finishCurrent()
            return false
        }
        return true
    }

    private func write(_ chunk: AudioChunk) {
        if anchor == nil || chunk.afterGap { anchor = (chunk.captureUSec, chunk.firstFrame) }
        let frameBytes = format.captureFrameBytes
        var offset = 0
        while offset < chunk.frames, !discarding {
            let frame = chunk.firstFrame + Int64(offset)
            let segmentStart = floorDiv(frame, plan.segmentFrames) * plan.segmentFrames
            let count = Int(min(Int64(chunk.frames - offset), segmentStart + plan.segmentFrames - frame))
            if current == nil && skippedSegmentStart != segmentStart {
                open(segmentStart: segmentStart, firstFrame: frame)
            }
            if let segment = current {
                do {
                    try chunk.bytes.withUnsafeBytes { raw in
                        try segment.writer.append(
                            captured: UnsafeRawBufferPointer(
                                rebasing: raw[(offset * frameBytes)..<((offset + count) * frameBytes)]))
                    }
                } catch {
                    fail(.wrapping(error))
                    return
                }
            }
            offset += count
            if frame + Int64(count) == segmentStart + plan.segmentFrames { finishCurrent() }
        }
    }

    private func open(segmentStart: Int64, firstFrame: Int64) {
        let frames = min(plan.segmentFrames, (plan.totalFrames ?? .max) - segmentStart)
        let expected = UInt64(max(0, frames)) * UInt64(format.fileFrameBytes)
        switch hooks.admit(expected) {
        case .write:
            break
        case .skip(let reason):
            skippedSegmentStart = segmentStart
            result.skippedSegments += 1
            logger.warning("recorder: skipping a recording: \(reason)")
            return
        case .stop(let reason):
            result.stopReason = reason
            logger.error("recorder: stopping: \(reason)")
            discarding = true
            requestStop()
            return
        }
        let anchor = anchor ?? (Int64(SystemClock.wallUSec()), firstFrame)
        let startUSec = anchor.usec + format.usec(frames: firstFrame - anchor.frame)
        let id = RecordingID.make()
        let partial = layout.partialPath(id: id, startUSec: startUSec)
        do {
            let writer = try WAVWriter(path: partial, format: format, expectedDataBytes: expected)
            current = Segment(
                id: id, writer: writer, startUSec: startUSec, finalPath: layout.finalPath(id: id, startUSec: startUSec),
                overruns: pendingOverruns)
            pendingOverruns = 0
            hooks.started(id, current!.finalPath, startUSec)
        } catch {
            fail(.wrapping(error))
        }
    }

    /// Finishes the open file: header and sync, row, rename. A failure keeps the partial file for recovery.
    private func finishCurrent() {
        guard let segment = current else { return }
        current = nil
        do {
            try segment.writer.finish()
            let row = RecordingRow(
                id: segment.id, path: segment.finalPath, startUSec: segment.startUSec,
                durationSeconds: Double(segment.writer.frames) / Double(format.sampleRate),
                sampleRate: format.sampleRate,
                channels: format.channels, deploymentID: plan.deploymentID, sampleFormat: format.sample.rawValue,
                sizeBytes: Int64(segment.writer.headerSize) + Int64(segment.writer.dataBytes),
                overruns: segment.overruns,
                recovered: false, kept: store.keepAtInsert ? true : nil)
            try store.insertRecording(row)
            try layout.publish(partial: segment.writer.path, to: segment.finalPath)
            result.savedCount += 1
            result.lastSaved = row
            hooks.saved(row)
        } catch {
            logger.error("recorder: cannot finish \"\(segment.writer.path)\": \(error); crash recovery will retry it")
            fail(.wrapping(error))
        }
    }

    /// A storage failure: keep what was written, stop capturing, discard the rest of the stream.
    private func fail(_ error: BerthError) {
        if result.error == nil { result.error = error }
        discarding = true
        requestStop()
        finishCurrent()
    }
}
