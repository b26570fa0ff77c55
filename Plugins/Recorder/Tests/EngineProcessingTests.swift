import BerthKit
import Glibc
import Testing

@testable import RecorderPlugin

/// Issue 17: processors run per recording (a real Python program finding tone bursts in real WAV files recorded
/// through an ALSA file PCM), detections in acoupi's tables, saving filters, failures and timeouts, deletion.
@Suite struct EngineProcessingTests {
    @Test func detectionsOfARealProcessorLandInAcoupisTablesExactToTheFrameGrid() async throws {
        let f = try EngineFixture("proc-tones")
        let tones = try ToneFixture(directory: f.dir.path)
        let engine = f.engine(f.toneConfig(tones, processors: [ToneFixture.processor()]))
        try await engine.start()
        let row = try await engine.recordNow(seconds: 1.0)
        #expect(
            await f.log.wait(seconds: 30) { events in
                events.filter { if case .detection = $0 { true } else { false } }.count >= 2
            })
        let store = try engine.requireRuntime().store
        #expect(await eventually { engine.status()["recordings_processed"] == .uint(1) })
        let found = try store.detections(recordingID: row.id)
        #expect(found.count == 2)
        for (stored, burst) in zip(found, ToneFixture.bursts) {
            #expect(stored.processor == "tones")
            #expect(stored.detection.label == "tone")
            #expect(stored.detection.startSeconds == burst.start && stored.detection.endSeconds == burst.end)
            #expect(stored.detection.score == burst.amplitude)
            #expect(stored.detection.lowHz == burst.hz - 50 && stored.detection.highHz == burst.hz + 50)
        }
        // The signal carries the same.
        #expect(f.log.detections.map(\.recordingID) == [row.id, row.id])
        #expect(f.log.detections.map(\.detection.startSeconds) == [0.2, 0.6])
        // acoupi's tables, as acoupi's own queries would read them.
        let tags = try store.access { db in
            try db.query(
                """
                SELECT m.model_name, t.key, t.value FROM predicted_tag t JOIN detection d ON d.id = t.detection_id
                JOIN model_output m ON m.id = d.model_output_id WHERE m.recording_id = ? ORDER BY t.id
                """, [.text(row.id)]
            ) { "\($0.text(at: 0) ?? ""):\($0.text(at: 1) ?? "")=\($0.text(at: 2) ?? "")" }
        }
        #expect(tags == ["tones:label=tone", "tones:freq_hz=1000", "tones:label=tone", "tones:freq_hz=2000"])
        // No filter: kept (decided on the loop's pass after the run), and the listing says so.
        #expect(try await eventually { try store.recording(id: row.id)?.kept == true })
        let listed = try await engine.queryRecordings(sinceUSec: 0, limit: 0, newestFirst: true, includeDeleted: true)
        #expect(listed.count == 1)
        #expect(listed.first?.row.status == "kept")
        #expect(listed.first?.detections == 2)
        #expect(listed.first?.processing == ["tones: done"])
        #expect(FileIO.fileSize(row.path) != nil)
        #expect(await eventually { engine.status()["recordings_kept"] == .uint(1) })
        let status = engine.status()
        #expect(status["recordings_pending"] == .uint(0))
        #expect(status["recordings_failed"] == .uint(0) && status["recordings_deleted"] == .uint(0))
        await engine.shutdown()
    }

    @Test func minScoreKeepsARecordingWithALoudDetectionAndDeletesOneWithout() async throws {
        for (minimum, kept) in [(0.5, true), (0.9, false)] {
            let f = try EngineFixture("proc-score")
            let tones = try ToneFixture(directory: f.dir.path)
            var saving = SavingConfig()
            saving.minScore = minimum
            let engine = f.engine(f.toneConfig(tones, processors: [ToneFixture.processor()], saving: saving))
            try await engine.start()
            let row = try await engine.recordNow(seconds: 1.0)
            let store = try engine.requireRuntime().store
            #expect(try await eventually { try store.recording(id: row.id)?.kept != nil })
            let after = try #require(try store.recording(id: row.id))
            #expect(after.kept == kept, "min_score \(minimum)")
            #expect((FileIO.fileSize(row.path) != nil) == kept)
            if !kept {
                #expect(after.deletedReason == "saving filters: none passed (min_score 0.9)")
                #expect(await f.log.waitForDeleted(row.id, seconds: 10))
                // The row stays, with its detections: only the audio went.
                #expect(try store.detections(recordingID: row.id).count == 2)
                #expect(await eventually { engine.status()["recordings_deleted"] == .uint(1) })
            }
            await engine.shutdown()
        }
    }

    @Test func intervalFiltersWithoutProcessorsDecideAtOnce() async throws {
        let nowMinute = Int((SystemClock.wallUSec() / 60_000_000) % 1440)
        func hhmm(_ m: Int) -> String {
            let m = (m + 1440) % 1440
            return (m / 60 < 10 ? "0" : "") + "\(m / 60):" + (m % 60 < 10 ? "0" : "") + "\(m % 60)"
        }
        for (window, kept) in [((nowMinute - 60, nowMinute + 60), true), ((nowMinute + 120, nowMinute + 180), false)] {
            let f = try EngineFixture("save-interval")
            var config = f.config
            config.saving.intervals = [WindowConfig(start: hhmm(window.0), end: hhmm(window.1))]
            let engine = f.engine(config)
            try await engine.start()
            let row = try await engine.recordNow(seconds: 0.2)
            let store = try engine.requireRuntime().store
            #expect(try await eventually { try store.recording(id: row.id)?.kept != nil })
            #expect(try store.recording(id: row.id)?.kept == kept, "\(hhmm(window.0))-\(hhmm(window.1))")
            #expect((FileIO.fileSize(row.path) != nil) == kept)
            await engine.shutdown()
        }
    }

    /// A processor that hangs is killed at its timeout (its whole process group), retried up to `attempts`, and
    /// the recording is kept and marked.
    @Test func aHangingProcessorIsKilledAtItsTimeoutAndTheRecordingKept() async throws {
        let f = try EngineFixture("proc-hang")
        let tones = try ToneFixture(directory: f.dir.path)
        let runs = f.dir.path + "/runs.log"
        var saving = SavingConfig()
        saving.minScore = 0.99  // would delete it, had the processor finished
        let processor = ToneFixture.processor(
            environment: ["TONES_SLEEP": "120", "TONES_LOG": runs], timeout: 3, attempts: 2, retryDelay: 0)
        let engine = f.engine(f.toneConfig(tones, processors: [processor], saving: saving))
        try await engine.start()
        let started = SystemClock.monotonicUSec()
        let row = try await engine.recordNow(seconds: 1.0)
        let store = try engine.requireRuntime().store
        #expect(try await eventually { try store.recording(id: row.id)?.kept != nil })
        let elapsed = Double(SystemClock.monotonicUSec() - started) / 1e6
        #expect(elapsed < 30, "two runs of 3 s took \(elapsed) s")
        #expect(try store.recording(id: row.id)?.kept == true)
        #expect(FileIO.fileSize(row.path) != nil)
        let run = try store.runCount(recordingID: row.id, processor: "tones")
        #expect(run.attempts == 2 && run.state == "failed" && run.outputs == 0)
        let listed = try await engine.queryRecordings(sinceUSec: 0, limit: 0, newestFirst: true, includeDeleted: true)
        #expect(
            listed.first?.processing.first?.contains("timed out after 3.0 s") == true,
            "\(listed.first?.processing ?? [])")
        // Every process it started is gone.
        let pids = try String(decoding: FileIO.readAll(path: runs, limit: 1 << 16), as: UTF8.self)
            .split(separator: "\n").compactMap { $0.split(separator: " ").last.flatMap { Int32($0) } }
        #expect(pids.count == 2)
        for pid in pids { #expect(processIsGone(pid), "processor pid \(pid) outlived its timeout") }
        #expect(
            await eventually {
                engine.status()["recordings_failed"] == .uint(1) && engine.status()["recordings_kept"] == .uint(1)
            })
        let status = engine.status()
        let errors = status["errors"].map { "\($0)" } ?? ""
        #expect(errors.contains("giving up: the recording is kept"), "\(errors)")
        await engine.shutdown()
    }

    @Test func aFailingProcessorIsRetriedABoundedNumberOfTimesWithItsReason() async throws {
        let f = try EngineFixture("proc-fail")
        let tones = try ToneFixture(directory: f.dir.path)
        let runs = f.dir.path + "/runs.log"
        let processor = ToneFixture.processor(
            environment: ["TONES_FAIL": "1", "TONES_LOG": runs], attempts: 3, retryDelay: 0.05)
        let engine = f.engine(f.toneConfig(tones, processors: [processor]))
        try await engine.start()
        let row = try await engine.recordNow(seconds: 1.0)
        let store = try engine.requireRuntime().store
        #expect(try await eventually { try store.recording(id: row.id)?.kept != nil })
        let run = try store.runCount(recordingID: row.id, processor: "tones")
        #expect(run.attempts == 3 && run.state == "failed")
        let lines = try String(decoding: FileIO.readAll(path: runs, limit: 1 << 16), as: UTF8.self)
            .split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines.allSatisfy { $0.hasPrefix(row.id + " ") })
        let listed = try await engine.queryRecordings(sinceUSec: 0, limit: 0, newestFirst: true, includeDeleted: true)
        #expect(
            listed.first?.processing == [
                "tones: failed (processor \"tones\" exited with status 3: \"tones.py: failing as asked (TONES_FAIL)\")"
            ])
        await engine.shutdown()
    }

    /// Issue 15: a WAV removed by hand is no longer listed as if it were there; listings are newest first when
    /// asked; DeleteRecording deletes the file and keeps the row.
    @Test func aFileRemovedByHandIsMarkedMissingAndDeleteRecordingKeepsTheRow() async throws {
        let f = try EngineFixture("missing")
        let engine = f.engine()
        try await engine.start()
        let first = try await engine.recordNow(seconds: 0.2)
        let second = try await engine.recordNow(seconds: 0.2)
        let third = try await engine.recordNow(seconds: 0.2)
        #expect(unlink(first.path) == 0)
        let listed = try await engine.listRecordings(sinceUSec: 0, limit: 0)
        #expect(listed.map(\.id) == [second.id, third.id])
        #expect(f.log.deleted.map(\.id) == [first.id] && f.log.deleted.map(\.reason) == ["missing"])
        let all = try await engine.queryRecordings(sinceUSec: 0, limit: 0, newestFirst: true, includeDeleted: true)
        #expect(all.map(\.row.id) == [third.id, second.id, first.id])
        #expect(all.map(\.row.status) == ["kept", "kept", "deleted"])
        #expect(all.last?.row.deletedReason == "missing")
        let newest = try await engine.queryRecordings(sinceUSec: 0, limit: 1, newestFirst: true, includeDeleted: true)
        #expect(newest.map(\.row.id) == [third.id])

        try await engine.deleteRecording(id: second.id)
        #expect(FileIO.fileSize(second.path) == nil)
        #expect(f.log.deleted.last?.id == second.id && f.log.deleted.last?.reason == "deleted by request")
        let again = await #expect(throws: BerthError.self) { try await engine.deleteRecording(id: second.id) }
        #expect(again?.code == .notFound && again?.message.contains("already deleted") == true)
        let unknown = await #expect(throws: BerthError.self) { try await engine.deleteRecording(id: "nope\n") }
        #expect(unknown?.code == .notFound && unknown?.message.contains("\"nope\\n\"") == true)
        #expect(try await engine.listRecordings(sinceUSec: 0, limit: 0).map(\.id) == [third.id])
        #expect(await eventually { engine.status()["recordings_deleted"] == .uint(2) })
        await engine.shutdown()
    }

    /// `Rescan()` notices removed files at once.
    @Test func rescanMarksRemovedFiles() async throws {
        let f = try EngineFixture("rescan-now")
        let engine = f.engine()
        try await engine.start()
        let a = try await engine.recordNow(seconds: 0.2)
        let b = try await engine.recordNow(seconds: 0.2)
        #expect(try await engine.rescan() == 0)
        #expect(unlink(a.path) == 0 && unlink(b.path) == 0)
        #expect(try await engine.rescan() == 2)
        #expect(try await engine.rescan() == 0)
        #expect(Set(f.log.deleted.map(\.id)) == [a.id, b.id])
        await engine.shutdown()
    }

    /// The periodic rescan notices a removed file without any listing.
    @Test func thePeriodicRescanNoticesARemovedFile() async throws {
        let f = try EngineFixture("rescan")
        var config = f.config
        config.rescanIntervalSeconds = 1
        let engine = f.engine(config)
        try await engine.start()
        let row = try await engine.recordNow(seconds: 0.2)
        #expect(unlink(row.path) == 0)
        #expect(await f.log.waitForDeleted(row.id, seconds: 10))
        await engine.shutdown()
    }

    /// A run cut short by a stop goes back to the queue; the next engine runs it, and its output is stored once.
    @Test func aRunCutShortByAStopIsRunAgainAndStoredOnce() async throws {
        let f = try EngineFixture("proc-restart")
        let tones = try ToneFixture(directory: f.dir.path)
        let runs = f.dir.path + "/runs.log"
        let slow = f.toneConfig(
            tones, processors: [ToneFixture.processor(environment: ["TONES_SLEEP": "60", "TONES_LOG": runs])])
        let first = f.engine(slow)
        try await first.start()
        let row = try await first.recordNow(seconds: 1.0)
        #expect(await eventually { FileIO.fileSize(runs) ?? 0 > 0 })
        await first.shutdown()
        let fast = f.toneConfig(tones, processors: [ToneFixture.processor(environment: ["TONES_LOG": runs])])
        let second = f.engine(fast)
        try await second.start()
        let store = try second.requireRuntime().store
        #expect(try await eventually { try store.recording(id: row.id)?.kept != nil })
        let run = try store.runCount(recordingID: row.id, processor: "tones")
        #expect(run.state == "done" && run.outputs == 1 && run.attempts == 2)
        #expect(try store.detections(recordingID: row.id).count == 2)
        await second.shutdown()
    }

    /// `Check()` names a processor whose program is missing.
    @Test func checkNamesAMissingProcessorProgram() async throws {
        let f = try EngineFixture("proc-check")
        var config = f.config
        config.processing.processors = [ToneFixture.processor()]
        let good = await f.engine(config).check().first { $0.name == "processors" }
        #expect(good?.passed == true && good?.message.hasPrefix("tones (/") == true, "\(String(describing: good))")
        config.processing.processors.append(ProcessorConfig(name: "birdnet", command: ["birdnet-analyze-nosuch"]))
        let bad = await f.engine(config).check().first { $0.name == "processors" }
        #expect(bad?.passed == false)
        #expect(bad?.message == "processor \"birdnet\": \"birdnet-analyze-nosuch\" was not found in PATH")
    }

    /// A processor's output: JSON objects are detections, other lines diagnostics; a malformed detection names its
    /// line.
    @Test func detectionLinesAreStrict() throws {
        let parsed = try DetectionParser.parse(
            [
                "loading model",
                #"{"label": "Erithacus rubecula", "score": 0.75, "start_s": 3, "end_s": 6, "common": "Robin", "night": false}"#,
                "", #"  {"label": "x", "score": 1e-3, "start_s": 0.5, "end_s": 0.5, "low_hz": 100, "high_hz": 8000}"#,
            ], processor: "birdnet")
        #expect(parsed.diagnostics == ["loading model"])
        #expect(parsed.detections.count == 2)
        #expect(
            parsed.detections[0].tags == [.init(key: "common", value: "Robin"), .init(key: "night", value: "false")])
        #expect(parsed.detections[1].score == 0.001 && parsed.detections[1].highHz == 8000)
        for (line, text) in [
            (#"{"label": "a", "score": "high", "start_s": 0, "end_s": 1}"#, "\"score\" must be a number"),
            (#"{"label": 3, "score": 1, "start_s": 0, "end_s": 1}"#, "\"label\" must be a non-empty string"),
            (#"{"label": "a", "score": 1, "start_s": 2, "end_s": 1}"#, "start_s 2.0 and end_s 1.0"),
            (#"{"label": "a", "score": 1, "end_s": 1}"#, "\"start_s\" is missing"),
            (#"{"label": "a", "score": 1, "start_s": 0, "end_s": 1, "tags": {"x": 1}}"#, "tag \"tags\""),
            (#"{"label": "a", "#, "line 2"),
        ] {
            let error = #expect(throws: BerthError.self) { try DetectionParser.parse(["ok", line], processor: "m") }
            #expect(error?.message.contains("processor \"m\" output line 2") == true, "\(error?.message ?? "")")
            #expect(error?.message.contains(text) == true, "\(error?.message ?? "")")
        }
    }
}
