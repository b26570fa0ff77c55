import BerthKit
import Synchronization
import Testing

@testable import RecorderPlugin

/// The writer's logic fed by hand (no threads, no ALSA): splitting, overrun accounting, times after a gap, and
/// the low-disk admission answers.
@Suite struct SegmentWriterTests {
    let format = AudioFormat(sampleRate: 1000, channels: 1, sample: .s16le)
    let t0 = utc(2026, 4, 1, 12)

    func chunk(_ range: Range<Int64>, at usec: Int64, afterGap: Bool = false) -> CaptureItem {
        let samples = range.map { Int16(truncatingIfNeeded: $0) }
        return .chunk(
            AudioChunk(
                bytes: samples.withUnsafeBytes { Array($0) }, firstFrame: range.lowerBound, frames: range.count,
                captureUSec: usec, afterGap: afterGap))
    }

    final class Counter: Sendable {
        let value = Mutex(0)
    }

    func writer(
        _ dir: borrowing TempDirectory, stops: Counter = Counter(),
        admit: @escaping @Sendable (UInt64) -> SegmentWriter.Admission = { _ in .write }
    ) throws -> (SegmentWriter, MetadataStore) {
        let layout = RecordingLayout(storage: dir.path, fileZone: .utc)
        try layout.prepare()
        let store = try MetadataStore(path: layout.database)
        var hooks = SegmentWriter.Hooks()
        hooks.admit = admit
        let writer = SegmentWriter(
            plan: SessionPlan(totalFrames: nil, segmentFrames: 1000, deploymentID: nil, reason: "test"), format: format,
            layout: layout, store: store, hooks: hooks, logger: Logger(label: "test"),
            requestStop: { stops.value.withLock { $0 += 1 } })
        return (writer, store)
    }

    @Test func overrunsCountPerFileAndTimesReanchorAfterAGap() throws {
        let dir = TempDirectory("segments")
        let (writer, store) = try writer(dir)
        let items: [CaptureItem] = [
            .opened(periodFrames: 600),
            chunk(0..<600, at: t0),
            chunk(600..<1200, at: t0 + 600_000),
            .overrun(atFrame: 1200, writerBehind: false),
            chunk(1200..<2500, at: t0 + 5_000_000, afterGap: true),
            .ended(frames: 2500),
        ]
        for (index, item) in items.enumerated() { #expect(writer.handle(item) == (index < items.count - 1)) }
        #expect(writer.result.savedCount == 3 && writer.result.overruns == 1 && writer.result.error == nil)
        let rows = try store.recordings(sinceUSec: .min, limit: 10)
        #expect(rows.map(\.startUSec) == [t0, t0 + 1_000_000, t0 + 5_800_000])
        #expect(rows.map(\.overruns) == [0, 1, 0])
        #expect(rows.map(\.durationSeconds) == [1, 1, 0.5])
        var joined: [Int16] = []
        for row in rows {
            let data = try readWAV(row.path).data
            joined += data.withUnsafeBytes { Array($0.bindMemory(to: Int16.self)) }
        }
        #expect(joined == (0..<2500).map { Int16(truncatingIfNeeded: $0) })
    }

    @Test func skippedSegmentsWriteNothingAndTheNextOneResumes() throws {
        let dir = TempDirectory("segments-skip")
        let calls = Mutex(0)
        let (writer, store) = try writer(
            dir,
            admit: { _ in
                calls.withLock {
                    $0 += 1
                    return $0 == 2 ? .skip("low disk") : .write
                }
            })
        _ = writer.handle(chunk(0..<3000, at: t0))
        _ = writer.handle(.ended(frames: 3000))
        #expect(writer.result.skippedSegments == 1 && writer.result.savedCount == 2)
        #expect(try store.recordings(sinceUSec: .min, limit: 10).map(\.startUSec) == [t0, t0 + 2_000_000])
    }

    @Test func stopAdmissionEndsTheStream() throws {
        let dir = TempDirectory("segments-stop")
        let stops = Counter()
        let (writer, store) = try writer(dir, stops: stops, admit: { _ in .stop("disk full") })
        _ = writer.handle(chunk(0..<1500, at: t0))
        _ = writer.handle(.ended(frames: 1500))
        #expect(writer.result.stopReason == "disk full" && writer.result.savedCount == 0)
        #expect(try store.recordingCount() == 0)
        #expect(stops.value.withLock { $0 } == 1)
    }

    @Test func aDeviceFailureKeepsTheAudioSoFar() throws {
        let dir = TempDirectory("segments-fail")
        let (writer, store) = try writer(dir)
        _ = writer.handle(chunk(0..<1300, at: t0))
        #expect(!writer.handle(.failed(BerthError(.deviceUnavailable, "unplugged"), frames: 1300)))
        #expect(writer.result.error?.code == .deviceUnavailable)
        #expect(try store.recordings(sinceUSec: .min, limit: 10).map(\.durationSeconds) == [1, 0.3])
    }
}
