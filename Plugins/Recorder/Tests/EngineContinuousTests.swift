import BerthKit
import Testing

@testable import RecorderPlugin

@Suite struct EngineContinuousTests {
    /// Continuous recording paced to real time, stopped mid-segment: the files, in order, are exactly the
    /// fixture's first frames with no gap or overlap; the last file ends where the stop came; every file has a row.
    @Test func continuousSegmentsConcatenateToTheFixture() async throws {
        var f = try EngineFixture("continuous", seconds: 30)
        f.config.paceRealtime = true
        f.config.schedule = ScheduleConfig(
            windows: [.init(start: "00:00", end: "00:00")], duration: 0.25, continuous: true)
        let engine = f.engine()
        try await engine.start()
        _ = try await engine.startDeployment(name: "nonstop", latitude: 0, longitude: 0)
        // Stop once the fifth file is open: it is in progress, and must be finished and saved too.
        #expect(
            await f.log.wait(seconds: 15) { $0.filter { if case .started = $0 { true } else { false } }.count >= 5 })
        try await engine.stopDeployment()
        let rows = try await engine.listRecordings(sinceUSec: 0, limit: 0)
        #expect(rows.count >= 5, "the segment in progress at the stop is saved too")
        #expect(rows.map(\.path) == f.log.savedPaths)
        var joined: [UInt8] = []
        for (index, row) in rows.enumerated() {
            let data = try readWAV(row.path).data
            if index < rows.count - 1 { #expect(data.count == 2000 * 2, "segment \(index) is 0.25 s") }
            #expect(row.durationSeconds == Double(data.count / 2) / 8000)
            joined += data
        }
        #expect(joined == f.fixture.expectedData(0..<Int64(joined.count / 2)))
        // Starts follow from the sample count: exactly 0.25 s apart.
        for (a, b) in zip(rows, rows.dropFirst()) { #expect(b.startUSec - a.startUSec == 250_000) }
        #expect(try FileIO.listDirectory(f.config.storagePath + "/recordings/.partial").isEmpty)
        await engine.shutdown()
    }

    /// A continuous session splits at exact frame counts even when chunks and segments do not line up
    /// (period 800 frames, segment 0.3 s = 2400 frames... and 0.35 s = 2800).
    @Test(arguments: [0.3, 0.35, 0.05])
    func splittingIsExactForAnySegmentLength(seconds: Double) async throws {
        let dir = TempDirectory("split")
        let format = AudioFormat(sampleRate: 8000, channels: 1, sample: .s16le)
        let fixture = try Fixture(directory: dir.path, format: format, seconds: 3)
        let layout = RecordingLayout(storage: dir.path + "/s", fileZone: .utc)
        try layout.prepare()
        let store = try MetadataStore(path: layout.database)
        let segment = format.frames(usec: Int64(seconds * 1e6))
        let total: Int64 = 8000 * 2 + 123
        let session = RecordingSession(
            settings: fixture.settings,
            plan: SessionPlan(totalFrames: total, segmentFrames: segment, deploymentID: nil, reason: "test"),
            pace: false,
            layout: layout, store: store, hooks: .init(), logger: Logger(label: "test"))
        let result = await session.run()
        #expect(result.error == nil)
        let rows = try store.recordings(sinceUSec: .min, limit: 1000)
        #expect(rows.count == Int((total + segment - 1) / segment))
        var joined: [UInt8] = []
        for row in rows { joined += try readWAV(row.path).data }
        #expect(joined == fixture.expectedData(0..<total))
    }
}
