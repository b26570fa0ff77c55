import BerthKit
import Glibc
import Synchronization
import Testing

@testable import RecorderPlugin

@Suite struct EngineHealthTests {
    /// Heartbeats carry measured values — recordings and overruns since the last beat, free bytes, state,
    /// errors — and each one is a database row.
    @Test func heartbeatsReportRealStatusAndAreStored() async throws {
        var f = try EngineFixture("beat")
        f.config.heartbeatInterval = 0.1
        let engine = f.engine(freeBytes: { _ in 123_456_789 })
        try await engine.start()
        #expect(await f.log.wait(seconds: 10) { $0.contains { if case .heartbeat = $0 { true } else { false } } })
        _ = try await engine.recordNow(seconds: 0.5)
        #expect(
            await f.log.wait(seconds: 10) { events in
                events.contains { if case .heartbeat(let s) = $0 { s["recordings"] == .uint(1) } else { false } }
            })
        let beat = try #require(f.log.heartbeats.first { $0["recordings"] == .uint(1) })
        #expect(beat["free_bytes"] == .uint(123_456_789))
        // The beat that counts the saved file may fall just before the engine leaves `recording`; a later one is idle.
        #expect(beat["state"] == .string("idle") || beat["state"] == .string("recording"))
        let seen = f.log.heartbeats.count
        #expect(
            await f.log.wait(seconds: 10) { events in
                let beats = events.compactMap { if case .heartbeat(let s) = $0 { s } else { nil } }
                return beats.dropFirst(seen).contains { $0["state"] == .string("idle") }
            })
        #expect(beat["overruns"] == .uint(0))
        #expect(beat["last_recording_usec"] != .uint(0))
        let store = try MetadataStore(path: f.config.storagePath + "/metadata.db")
        let rows = try store.heartbeats(limit: 100)
        #expect(rows.count >= 2)
        #expect(rows.contains { $0.recordings == 1 && $0.freeBytes == 123_456_789 })
        #expect(engine.properties.lastHeartbeatUSec > 0)
        await engine.shutdown()
    }

    /// The device disappears (the fixture file is missing): the engine goes to `error` with the reason, keeps
    /// retrying with backoff, reports `workers: notok`, and records again once the device is back.
    @Test func deviceLossIsAnErrorWithRetriesNeverASilentStop() async throws {
        var f = try EngineFixture("devloss")
        let moved = f.fixture.path + ".away"
        #expect(rename(f.fixture.path, moved) == 0)
        f.config.heartbeatInterval = 0.1
        let engine = f.engine()
        try await engine.start()
        _ = try await engine.startDeployment(name: "gone", latitude: 0, longitude: 0, force: true)
        #expect(await f.log.waitForState(.error))
        let reason = f.log.events.compactMap { if case .state(.error, let r) = $0 { r } else { nil } }.first ?? ""
        #expect(reason.contains("cannot open ALSA PCM \"fixture\""), "\(reason)")
        let status = engine.status()
        #expect(status["workers"] == .string("notok"))
        #expect(status["workers.capture"]?.string?.hasPrefix("notok: cannot open ALSA PCM") == true)
        #expect(
            await f.log.wait(seconds: 10) { events in
                events.contains { if case .heartbeat(let s) = $0 { s["state"] == .string("error") } else { false } }
            })
        // The device comes back.
        #expect(rename(moved, f.fixture.path) == 0)
        #expect(await f.log.waitForSaved(1))
        #expect(engine.status()["workers.capture"] == .string("ok"))
        try await engine.stopDeployment()
        await engine.shutdown()
    }

    @Test func lowDiskSkipRefusesAndResumes() async throws {
        var f = try EngineFixture("skip")
        f.config.minFreeBytes = 1_000_000
        f.config.lowDiskPolicy = .skip
        f.config.heartbeatInterval = 0.1
        let free = Mutex<UInt64>(10)
        let engine = f.engine(freeBytes: { _ in free.withLock { $0 } })
        try await engine.start()
        let error = await #expect(throws: BerthError.self) { try await engine.recordNow(seconds: 0.2) }
        #expect(error?.code == .storageFull)
        #expect(error?.message.contains("below min_free_bytes 1000000") == true)
        _ = try await engine.startDeployment(name: "tight", latitude: 0, longitude: 0, force: true)
        #expect(
            await f.log.wait(seconds: 10) { events in
                events.contains {
                    if case .heartbeat(let s) = $0 {
                        s["errors"]?.description.contains("skipping recordings") == true
                    } else {
                        false
                    }
                }
            })
        #expect(engine.status()["workers.writer"]?.string?.hasPrefix("notok: only 10 bytes free") == true)
        #expect(f.log.saved.isEmpty)
        free.withLock { $0 = 1 << 40 }
        #expect(await f.log.waitForSaved(1))
        #expect(engine.status()["workers.writer"] == .string("ok"))
        try await engine.stopDeployment()
        await engine.shutdown()
    }

    @Test func lowDiskStopEndsRecordingWithAnError() async throws {
        var f = try EngineFixture("stop")
        f.config.minFreeBytes = 1_000_000
        f.config.lowDiskPolicy = .stop
        let engine = f.engine(freeBytes: { _ in 10 })
        try await engine.start()
        _ = try await engine.startDeployment(name: "full", latitude: 0, longitude: 0, force: true)
        #expect(await f.log.waitForState(.error))
        #expect(engine.status()["state_reason"]?.string?.contains("low_disk_policy stop") == true)
        #expect(engine.status()["program"] == .string("unhealthy"))
        try await engine.stopDeployment()
        #expect(engine.state == .idle)
        await engine.shutdown()
    }

    /// A disk of 200 kB: recordings fill it, and `delete-oldest` removes the oldest file and row for each new one.
    @Test func lowDiskDeleteOldestMakesRoom() async throws {
        var f = try EngineFixture("oldest")
        f.config.minFreeBytes = 50_000
        f.config.lowDiskPolicy = .deleteOldest
        let recordings = f.config.storagePath + "/recordings"
        let capacity: Int64 = 200_000
        let engine = f.engine(freeBytes: { _ in
            UInt64(max(0, capacity - filesUnder(recordings).reduce(0) { $0 + (FileIO.fileSize($1) ?? 0) }))
        })
        try await engine.start()
        var saved: [RecordingRow] = []
        for _ in 0..<6 { saved.append(try await engine.recordNow(seconds: 2)) }  // 32 kB each
        let rows = try await engine.listRecordings(sinceUSec: 0, limit: 0)
        #expect(rows.count == 4, "200 kB holds four 32 kB files above the 50 kB minimum")
        #expect(rows.map(\.id) == saved.suffix(rows.count).map(\.id), "the oldest went first")
        #expect(FileIO.fileSize(saved[0].path) == nil)
        #expect(filesUnder(recordings).filter { $0.hasSuffix(".wav") }.count == rows.count)
        // The rows stay, marked, and RecordingDeleted said so.
        #expect(f.log.deleted.map(\.id) == saved.prefix(2).map(\.id))
        #expect(f.log.deleted.allSatisfy { $0.reason == "low disk (delete-oldest)" })
        let all = try await engine.queryRecordings(sinceUSec: 0, limit: 0, newestFirst: false, includeDeleted: true)
        #expect(all.prefix(2).map(\.row.deletedReason) == ["low disk (delete-oldest)", "low disk (delete-oldest)"])
        await engine.shutdown()
    }

    /// `delete-oldest` never deletes a recording its processors have not finished with: the disk stays short and
    /// recordings are skipped instead.
    @Test func lowDiskDeleteOldestSparesRecordingsStillBeingProcessed() async throws {
        var f = try EngineFixture("oldest-processing")
        let tones = try ToneFixture(directory: f.dir.path)
        f.config.minFreeBytes = 50_000
        f.config.lowDiskPolicy = .deleteOldest
        let recordings = f.config.storagePath + "/recordings"
        let capacity: Int64 = 130_000
        let config = f.toneConfig(tones, processors: [ToneFixture.processor(environment: ["TONES_SLEEP": "60"])])
        let engine = f.engine(
            config,
            freeBytes: { _ in
                UInt64(max(0, capacity - filesUnder(recordings).reduce(0) { $0 + (FileIO.fileSize($1) ?? 0) }))
            })
        try await engine.start()
        let first = try await engine.recordNow(seconds: 2)  // 32 kB each: room for two above the minimum
        let second = try await engine.recordNow(seconds: 2)
        let refused = await #expect(throws: BerthError.self) { try await engine.recordNow(seconds: 2) }
        #expect(refused?.code == .storageFull, "\(String(describing: refused))")
        #expect(FileIO.fileSize(first.path) != nil && FileIO.fileSize(second.path) != nil)
        #expect(f.log.deleted.isEmpty)
        #expect(await eventually { engine.status()["processors_running"] == .uint(2) })
        await engine.shutdown()
    }
}
