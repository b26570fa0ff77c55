import BerthKit
import Synchronization
import Testing

@testable import RecorderPlugin

@Suite struct CaptureTests {
    static let formats: [AudioFormat] = [
        .init(sampleRate: 8000, channels: 1, sample: .s16le),
        .init(sampleRate: 16000, channels: 2, sample: .s24le),
        .init(sampleRate: 12000, channels: 2, sample: .s24le3),
        .init(sampleRate: 8000, channels: 3, sample: .s32le),
    ]

    /// A session of 2.5 segments through a file PCM: three files whose samples are exactly the fixture's, in
    /// order, with no gap or overlap, and a database row for each.
    @Test(arguments: formats)
    func sessionSplitsTheFixtureExactly(format: AudioFormat) async throws {
        let dir = TempDirectory("capture")
        let fixture = try Fixture(directory: dir.path, format: format, seconds: 4)
        let layout = RecordingLayout(storage: dir.path + "/storage", fileZone: .utc)
        try layout.prepare()
        let store = try MetadataStore(path: layout.database)
        let segment = Int64(format.sampleRate)  // one second
        let started = Mutex<[String]>([])
        let saved = Mutex<[RecordingRow]>([])
        var hooks = SegmentWriter.Hooks()
        hooks.started = { _, path, _ in started.withLock { $0.append(path) } }
        hooks.saved = { row in saved.withLock { $0.append(row) } }
        let session = RecordingSession(
            settings: fixture.settings,
            plan: SessionPlan(totalFrames: segment * 5 / 2, segmentFrames: segment, deploymentID: nil, reason: "test"),
            pace: false, layout: layout, store: store, hooks: hooks, logger: Logger(label: "test"))
        let result = await session.run()
        #expect(result.error == nil)
        #expect(result.opened)
        #expect(result.capturedFrames == segment * 5 / 2)
        #expect(result.savedCount == 3)
        let rows = saved.withLock { $0 }
        #expect(rows.map(\.path) == started.withLock { $0 })
        var frame: Int64 = 0
        for (index, row) in rows.enumerated() {
            let wav = try readWAV(row.path)
            let frames = Int64(wav.data.count / format.fileFrameBytes)
            #expect(frames == (index < 2 ? segment : segment / 2))
            #expect(wav.data == fixture.expectedData(frame..<frame + frames), "file \(index) differs from the fixture")
            #expect(wav.header.channels == format.channels && wav.header.sampleRate == format.sampleRate)
            #expect(wav.header.validBits == format.sample.validBits)
            #expect(row.durationSeconds == Double(frames) / Double(format.sampleRate))
            #expect(row.sizeBytes == FileIO.fileSize(row.path).map { $0 - Int64(wav.header.dataBytes & 1) })
            frame += frames
        }
        // Consecutive starts are exactly one segment apart (times derive from the sample count).
        #expect(rows.count == 3 && rows[1].startUSec - rows[0].startUSec == 1_000_000)
        #expect(try store.recordings(sinceUSec: .min, limit: 10) == rows.sorted { $0.startUSec < $1.startUSec })
        #expect(try FileIO.listDirectory(layout.partials).isEmpty)
        for row in rows {
            let stamp = CivilDateTime(usec: row.startUSec)
            #expect(
                row.path.hasPrefix(
                    "\(layout.recordings)/\(pad(stamp.date.year, 4))/\(pad(stamp.date.month, 2))/\(pad(stamp.date.day, 2))/\(stamp.compactStamp)_\(row.id).wav"
                ))
        }
    }

    @Test func unknownPCMFailsWithTheDeviceName() async throws {
        let dir = TempDirectory("capture-bad")
        let layout = RecordingLayout(storage: dir.path, fileZone: .utc)
        try layout.prepare()
        let store = try MetadataStore(path: layout.database)
        let fixture = try Fixture(
            directory: dir.path, format: .init(sampleRate: 8000, channels: 1, sample: .s16le), seconds: 0.1)
        var settings = fixture.settings
        settings.device = "no_such_pcm"
        let session = RecordingSession(
            settings: settings,
            plan: SessionPlan(totalFrames: 800, segmentFrames: 800, deploymentID: nil, reason: "test"),
            pace: false, layout: layout, store: store, hooks: .init(), logger: Logger(label: "test"))
        let result = await session.run()
        #expect(result.error?.code == .deviceUnavailable)
        #expect(result.error?.message.contains("\"no_such_pcm\"") == true, "\(result.error?.message ?? "")")
        #expect(result.savedCount == 0 && !result.opened)
    }

    @Test func pcmRefusesImpossibleParametersWithoutCrashing() throws {
        let dir = TempDirectory("capture-params")
        let fixture = try Fixture(
            directory: dir.path, format: .init(sampleRate: 8000, channels: 1, sample: .s16le), seconds: 0.1)
        AlsaDiagnostics.install()
        defer { AlsaDiagnostics.uninstall() }
        var settings = fixture.settings
        settings.format.channels = 0
        let channels = #expect(throws: BerthError.self) { try AlsaPCM(settings) }
        #expect(channels?.code == .invalidConfig)
        #expect(channels?.message.contains("0 channels") == true, "\(channels?.message ?? "")")
        settings = fixture.settings
        settings.alsaConfig = "pcm.fixture { type"
        let syntax = #expect(throws: BerthError.self) { try AlsaPCM(settings) }
        #expect(syntax?.code == .invalidConfig)
        settings = fixture.settings
        settings.alsaConfig =
            "pcm.fixture { type file; slave { pcm { type null } } file \"/dev/null\"; infile \"/nonexistent/x.raw\"; format raw }"
        let missing = #expect(throws: BerthError.self) { try AlsaPCM(settings) }
        #expect(missing?.code == .deviceUnavailable)
    }
}
