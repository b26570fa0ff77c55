import BerthKit
import Testing

@testable import RecorderPlugin

@Suite struct MetadataStoreTests {
    @Test func deploymentsOneActiveAtATime() throws {
        let dir = TempDirectory("meta")
        let store = try MetadataStore(path: dir.path + "/metadata.db")
        #expect(try store.schemaVersion() == MetadataSchema.migrations.count)
        #expect(try store.activeDeployment() == nil)
        let first = Deployment(id: RecordingID.make(), name: "pond", latitude: 51.5, longitude: -0.1, startedUSec: 1000)
        try store.insertDeployment(first)
        #expect(try store.activeDeployment() == first)
        let second = Deployment(id: RecordingID.make(), name: "wood", latitude: 0, longitude: 0, startedUSec: 2000)
        let error = #expect(throws: BerthError.self) { try store.insertDeployment(second) }
        #expect(error?.code == .alreadyExists)
        #expect(error?.message.contains("pond") == true)
        let ended = try store.endActiveDeployment(atUSec: 5000)
        #expect(ended?.endedUSec == 5000)
        #expect(try store.activeDeployment() == nil)
        #expect(try store.endActiveDeployment(atUSec: 6000) == nil)
        try store.insertDeployment(second)
        #expect(try store.deployment(activeAtUSec: 1500)?.id == first.id)
        #expect(try store.deployment(activeAtUSec: 2500)?.id == second.id)
        // acoupi's text columns are there too.
        let text = try store.access {
            try $0.prepare("SELECT started_on, ended_on FROM deployment WHERE id = ?").rows([.text(first.id)]) {
                [$0.text(at: 0), $0.text(at: 1)]
            }
        }
        #expect(text == [["1970-01-01 00:00:00.001000", "1970-01-01 00:00:00.005000"]])
    }

    @Test func recordingsAndHeartbeats() throws {
        let dir = TempDirectory("meta-rec")
        let store = try MetadataStore(path: dir.path + "/metadata.db")
        let rows = (0..<5).map { i in
            RecordingRow(
                id: RecordingID.make(), path: "/x/\(i).wav", startUSec: Int64(i) * 10_000_000, durationSeconds: 3,
                sampleRate: 48000, channels: 1, deploymentID: nil, sampleFormat: "S16_LE", sizeBytes: 288_044,
                overruns: i, recovered: i == 4, kept: true)  // no processor, no filter: kept at once
        }
        for row in rows.reversed() { try store.insertRecording(row) }
        #expect(try store.recordings(sinceUSec: 20_000_000, limit: 2) == Array(rows[2..<4]))
        #expect(try store.latestRecording() == rows[4])
        #expect(try store.recordingCount() == 5)
        try store.deleteRecording(id: rows[0].id)
        #expect(try store.oldestRecordings(limit: 1) == [rows[1]])
        let duplicate = #expect(throws: BerthError.self) { try store.insertRecording(rows[1]) }
        #expect(duplicate?.code == .alreadyExists)
        let beat = HeartbeatRow(
            timeUSec: 99, state: "error", deploymentID: nil, lastRecordingUSec: 40_000_000, recordings: 2, overruns: 1,
            freeBytes: 1 << 40, errors: ["PCM \"x\" vanished", "second"])
        try store.insertHeartbeat(beat)
        #expect(try store.heartbeats(limit: 10) == [beat])
    }
}
