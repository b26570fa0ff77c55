import BerthKit
import Testing

@testable import RecorderPlugin

/// CPU per second of audio for capture + WAV + database, from a file PCM as fast as it reads (not paced). A
/// measurement printed for BENCHMARKS.md, with a loose bound so that a gross regression fails; the benchmark
/// program (later) is the real gate. Debug builds are several times slower than release.
@Suite struct CapturePerformanceTests {
    @Test(arguments: [(48000, 60.0), (384_000, 20.0)])
    func cpuPerSecondOfAudio(rate: Int, seconds: Double) async throws {
        let dir = TempDirectory("perf")
        let format = AudioFormat(sampleRate: rate, channels: 1, sample: .s16le)
        let fixture = try Fixture(directory: dir.path, format: format, seconds: seconds)
        let layout = RecordingLayout(storage: dir.path + "/s", fileZone: .utc)
        try layout.prepare()
        let store = try MetadataStore(path: layout.database)
        let segment = Int64(rate * 3)
        let session = RecordingSession(
            settings: fixture.settings,
            plan: SessionPlan(totalFrames: fixture.frames, segmentFrames: segment, deploymentID: nil, reason: "bench"),
            pace: false, layout: layout, store: store, hooks: .init(), logger: Logger(label: "bench"))
        let wallStart = Int64(SystemClock.monotonicUSec())
        let result = await session.run()
        let wall = Int64(SystemClock.monotonicUSec()) - wallStart
        #expect(result.error == nil)
        #expect(result.capturedFrames == fixture.frames)
        let perSecond = Double(result.cpuUSec) / seconds
        print(
            "recorder benchmark: \(rate) Hz mono S16_LE, \(seconds) s of audio in \(result.savedCount) files: "
                + "CPU \(result.cpuUSec) µs = \(String(perSecond.rounded())) µs per second of audio "
                + "(\(Int(1e6 / perSecond))x real time on one core); wall \(wall / 1000) ms")
        #expect(perSecond < 50_000, "more than 5% of a core per second of audio")
    }
}
