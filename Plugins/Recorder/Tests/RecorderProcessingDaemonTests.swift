import BerthKit
import BerthTestSupport
import Foundation
import Testing

@testable import RecorderPlugin

/// Issue 17 through berthd: a real processor (tones.py) on recordings of a real ALSA file PCM, `kill -9` of berthd
/// while a processor runs, and the queue in metadata.db afterwards: every recording processed, its output stored
/// exactly once; only the run the kill cut short ran again.
@Suite(.serialized) struct RecorderProcessingDaemonTests {
    @Test func killMinus9DuringProcessingLosesNoRecordingAndStoresNoneTwice() async throws {
        try await TestEnvironment.with { env in
            let world = try DaemonWorld(env, seconds: 1)
            let tones = try ToneFixture(directory: env.root)
            let runs = env.root + "/runs.log"
            let alsa = tones.alsaConfig.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                .joined(separator: " ")
            let config = """
                recorder:
                  device: fixture
                  alsa_config: '\(alsa)'
                  sample_rate: 8000
                  channels: 1
                  format: S16_LE
                  min_free_bytes: 0
                  heartbeat_interval: 0.5
                  schedule: {duration: 1, interval: 1.2}
                  processing:
                    concurrency: 1
                    processors:
                      - name: tones
                        command: [python3, "\(ToneFixture.processorPath)"]
                        timeout: 60
                        retry_delay: 0
                        environment: {TONES_SLEEP: "0.8", TONES_LOG: "\(runs)"}

                """
            try env.writeConfig(config)
            let first = try await env.startDaemon()
            let signals = try await SignalLog(env, path: DaemonWorld.path)
            _ = try await world.call("StartDeployment", [.string("pond"), .double(50), .double(4), .vardict([])])
            try await signals.wait("Detection", count: 4)
            func runLines() -> [(id: String, pid: Int32)] {
                let text = (try? String(contentsOfFile: runs, encoding: .utf8)) ?? ""
                return text.split(separator: "\n").compactMap { line in
                    let parts = line.split(separator: " ")
                    guard parts.count == 2, let pid = Int32(parts[1]) else { return nil }
                    return (String(parts[0]), pid)
                }
            }
            // Kill as a run begins (it sleeps 0.8 s before it prints anything).
            let before = runLines().count
            try await waitUntil("a further processor run starts", timeout: .seconds(20)) { runLines().count > before }
            let cut = try #require(runLines().last)
            first.signal(SIGKILL)
            _ = try await first.waitForExit()
            // The processor went with the daemon (PR_SET_PDEATHSIG).
            try await waitUntil("the processor \(cut.pid) is gone", timeout: .seconds(10)) { processIsGone(cut.pid) }

            try await env.startDaemon()
            _ = try await world.call("StopDeployment")
            try await waitUntil("the queue drains", timeout: .seconds(60)) {
                let status = try await world.call("Status").first?.stringKeyed ?? [:]
                return status["recordings_pending"]?.unwrapped == .uint64(0)
                    && status["processors_running"]?.unwrapped == .uint64(0)
            }
            let store = try MetadataStore(path: world.storage + "/metadata.db")
            let rows = try store.recordings(sinceUSec: 0, limit: 1000)
            #expect(rows.count >= 3)
            let counts = Dictionary(runLines().map { ($0.id, 1) }, uniquingKeysWith: +)
            for row in rows {
                let run = try store.runCount(recordingID: row.id, processor: "tones")
                #expect(run.state == "done" && run.outputs == 1, "\(row.id): \(run)")
                #expect(try store.detections(recordingID: row.id).count == 2, "\(row.id)")
                #expect(row.kept == true && row.deletedUSec == nil)
                // Only the run the kill cut short ran twice.
                #expect(counts[row.id] == (row.id == cut.id ? 2 : 1), "\(row.id) ran \(counts[row.id] ?? 0) time(s)")
            }
            #expect(rows.contains { $0.id == cut.id })
        }
    }

    /// `wait_for_uplink` in berthd without an uplink plugin: the recorder asks berthd's own bus name, hears that
    /// there is no uplink object, and deletes (the call to itself neither hangs nor blocks the bus).
    @Test func waitForUplinkWithoutAnUplinkDeletesAfterProcessing() async throws {
        try await TestEnvironment.with { env in
            let world = try DaemonWorld(env, seconds: 1)
            let tones = try ToneFixture(directory: env.root)
            let alsa = tones.alsaConfig.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                .joined(separator: " ")
            try env.writeConfig(
                """
                recorder:
                  device: fixture
                  alsa_config: '\(alsa)'
                  sample_rate: 8000
                  channels: 1
                  format: S16_LE
                  min_free_bytes: 0
                  processing:
                    processors: [{name: tones, command: [python3, "\(ToneFixture.processorPath)"]}]
                  saving: {min_score: 0.99, wait_for_uplink: true, uplink_grace: 0}

                """)
            try await env.startDaemon()
            let signals = try await SignalLog(env, path: DaemonWorld.path)
            let now = try await env.berthctl(["recorder", "record-now", "1"])
            #expect(now.status == 0, "\(now)")
            let path = now.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let detections = try await signals.wait("Detection", count: 2)
            #expect(detections.map { $0.arguments[3] } == [.double(0.2), .double(0.6)])
            let deleted = try await signals.wait("RecordingDeleted")
            #expect(deleted.first?.arguments.last == .string("saving filters: none passed (min_score 0.99)"))
            #expect(!FileManager.default.fileExists(atPath: path))
            let table = try await env.berthctl(["recorder", "recordings"])
            #expect(table.stdout.contains("deleted (saving filters: none passed (min_score 0.99))"), "\(table)")
            _ = world
        }
    }
}
