import BerthKit
import Glibc
import Testing

@testable import RecorderPlugin

@Suite struct EngineRecoveryTests {
    /// What `kill -9` leaves behind, then a new engine: a partial file with enough audio is finished (header
    /// fixed, row added, renamed), a short one and a stray file are removed, and one whose row was already
    /// written is only renamed. Nothing stays in `.partial`.
    @Test func partialFilesAreFinishedOrRemovedAtStart() async throws {
        let f = try EngineFixture("recovery")
        let layout = RecordingLayout(storage: f.config.storagePath, fileZone: .utc)
        try layout.prepare()
        let format = f.fixture.format
        let deploymentStart = utc(2026, 5, 1, 12)
        do {
            let store = try MetadataStore(path: layout.database)
            try store.insertDeployment(
                .init(id: RecordingID.make(), name: "lost", latitude: 1, longitude: 2, startedUSec: deploymentStart))
        }
        func partial(seconds: Double, startUSec: Int64) throws -> (id: String, path: String) {
            let id = RecordingID.make()
            let path = layout.partialPath(id: id, startUSec: startUSec)
            let writer = try WAVWriter(path: path, format: format, expectedDataBytes: 1 << 20)
            let frames = Int64(seconds * 8000)
            try f.fixture.bytes[0..<Int(frames) * 2].withUnsafeBytes { try writer.append(captured: $0) }
            return (id, path)  // never finished: the header still says 0 bytes
        }
        let long = try partial(seconds: 2, startUSec: deploymentStart + 60_000_000)
        let short = try partial(seconds: 0.1, startUSec: deploymentStart + 70_000_000)
        let stray = layout.partials + "/notes.txt"
        try writeFile(stray, Array("x".utf8))
        // A file whose row made it to the database before the crash.
        let renamed = try partial(seconds: 1, startUSec: deploymentStart + 80_000_000)
        let renamedFinal = layout.finalPath(id: renamed.id, startUSec: deploymentStart + 80_000_000)
        do {
            let store = try MetadataStore(path: layout.database)
            try store.insertRecording(
                RecordingRow(
                    id: renamed.id, path: renamedFinal, startUSec: deploymentStart + 80_000_000, durationSeconds: 1,
                    sampleRate: 8000, channels: 1, deploymentID: nil, sampleFormat: "S16_LE", sizeBytes: 16044,
                    overruns: 0,
                    recovered: false))
        }

        let engine = f.engine()
        try await engine.start()
        let actions = engine.recoveryActions
        #expect(actions.count == 4)
        let finalised = actions.compactMap { if case .finalised(let row) = $0 { row } else { nil } }
        #expect(finalised.map(\.id) == [long.id])
        let row = try #require(finalised.first)
        #expect(row.recovered && row.durationSeconds == 2)
        #expect(row.path == layout.finalPath(id: long.id, startUSec: deploymentStart + 60_000_000))
        #expect(row.path.contains("/recordings/2026/05/01/20260501_120100_\(long.id).wav"))
        #expect(row.deploymentID != nil, "assigned to the deployment active at its start")
        let wav = try readWAV(row.path)
        #expect(wav.header.dataBytes == 32000)
        #expect(wav.data == f.fixture.expectedData(0..<16000))
        #expect(actions.contains(.removed(path: short.path, reason: "only 0.1 s of audio (minimum 0.5 s)")))
        #expect(actions.contains { if case .removed(stray, _) = $0 { true } else { false } })
        #expect(actions.contains(.published(id: renamed.id, path: renamedFinal)))
        #expect(try readWAV(renamedFinal).data == f.fixture.expectedData(0..<8000))
        #expect(try FileIO.listDirectory(layout.partials).isEmpty)
        // The schedule records 0.2 s every 0.5 s from the start: on a slow machine a new recording may already be
        // there. The recovered two are listed and counted; anything else is a recording made after the start.
        let rows = try await engine.listRecordings(sinceUSec: 0, limit: 0)
        #expect(Set(rows.map(\.id)).isSuperset(of: [long.id, renamed.id]))
        #expect(rows.filter { ![long.id, renamed.id].contains($0.id) }.allSatisfy { $0.startUSec > deploymentStart + 80_000_000 })
        #expect(engine.properties.recordingsCount >= 2)
        await engine.shutdown()
    }
}
