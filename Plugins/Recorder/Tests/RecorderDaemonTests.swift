import BerthKit
import BerthTestSupport
import Foundation
import Testing

@testable import RecorderPlugin

/// berthd killed and restarted, RecordNow jobs, reload, and the checked-in introspection XML.
@Suite(.serialized) struct RecorderDaemonTests {
    @Test func killMidRecordingFinalisesThePartialAndTheDeploymentResumes() async throws {
        try await TestEnvironment.with { env in
            let world = try DaemonWorld(env, seconds: 30)
            // Segments long enough that none completes before the kill, even on a loaded machine.
            try env.writeConfig(world.config(["pace_realtime: true", "schedule: {duration: 20, continuous: true}"]))
            let first = try await env.startDaemon()
            let signals = try await SignalLog(env, path: DaemonWorld.path)
            let reply = try await world.call("StartDeployment", [.string("hedge"), .double(50), .double(4), .vardict([])])
            let id = try #require(reply.first?.string)
            try await signals.wait("RecordingStarted")
            // Kill once the partial file holds more than recovery_min_seconds (0.5 s = 48000 bytes) of audio.
            let partials = world.storage + "/recordings/.partial"
            try await waitUntil("the partial file holds 0.7 s", timeout: .seconds(10)) {
                world.partialBytes() > 44 + 67200
            }
            #expect(signals.all("RecordingSaved").isEmpty)
            first.signal(SIGKILL)
            _ = try await first.waitForExit()
            let second = try await env.startDaemon()
            // The partial was finalised (said in the log), and the deployment resumed recording.
            try await waitUntil("the log says what became of the partial") {
                second.log.contains("finalised partial recording")
            }
            let deployment = try await world.property("Deployment")
            #expect(deployment.stringKeyed?["id"]?.unwrapped == .string(id))
            try await waitUntil("recording again") { try await world.property("State") == .string("recording") }
            let rows = try await world.call("ListRecordings", [.uint64(0), .uint32(0)]).first?.items ?? []
            let recovered = try #require(rows.first?.items)
            let path = try #require(recovered[1].string)
            #expect(second.log.contains("as \"\(path)\""), "\(second.log)")
            let wav = try readWAV(path)
            let frames = Int64(wav.data.count / 2)
            #expect(frames >= 33600 && frames < 20 * 48000, "\(frames) frames")
            #expect(wav.data == world.fixture.expectedData(0..<frames), "the recovered file is not the fixture's start")
            #expect(recovered[3] == .uint64(UInt64(frames * 1_000_000 / 48000)))
            let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: partials)) ?? []
            #expect(leftovers.filter { $0.hasSuffix(".partial") }.count <= 1, "\(leftovers)")
        }
    }

    @Test func recordNowIsAJobAndCancelKeepsTheAudio() async throws {
        try await TestEnvironment.with { env in
            let world = try DaemonWorld(env)
            try env.writeConfig(world.config())
            try await env.startDaemon()
            // berthctl waits for the job and prints the file, which holds the fixture's first 0.5 s.
            let now = try await env.berthctl(["recorder", "record-now", "0.5"])
            #expect(now.status == 0, "\(now)")
            let path = now.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(path.hasPrefix(world.storage + "/recordings/") && path.hasSuffix(".wav"), "\(now)")
            #expect(try readWAV(path).data == world.fixture.expectedData(0..<24000))
            let bad = try await world.failure("RecordNow", [.double(0)])
            #expect(bad.name == "org.berth.Berth1.Error.InvalidArgument" && bad.message.contains("0.0 s"), "\(bad)")

            // Reload with a paced PCM at another rate: the engine restarts and the properties follow.
            try env.writeConfig(world.config(["pace_realtime: true", "sample_rate: 16000"]))
            let reload = try await env.busctl(["call", "org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager",
                "Reload"])
            #expect(reload.status == 0, "\(reload)")
            try await waitUntil("SampleRate 16000") { try await world.property("SampleRate") == .uint32(16000) }

            // A long `berthctl recorder record-now`, interrupted with Ctrl-C: berthctl cancels the job, which ends
            // canceled with the audio so far saved, and says where it is.
            let signals = try await SignalLog(env)
            let recording = try ChildProcess.spawn(
                [TestEnvironment.buildDir + "/berthctl", "recorder", "record-now", "30"], environment: env.environment,
                stdout: env.root + "/record-now.out", stderr: env.root + "/record-now.err")
            defer { recording.terminate() }
            try await signals.wait("RecordingStarted")
            try await waitUntil("0.3 s of audio in the file") { world.partialBytes() > 44 + 9600 }
            recording.signal(SIGINT)
            #expect(try await recording.wait(timeout: .seconds(10)) == 1)
            let removed = try await signals.wait("JobRemoved").last
            #expect(removed?.arguments.last == .string("canceled"))
            let saved = Saved(try #require(try await signals.wait("RecordingSaved").first))
            let said = (try? FileSystem.readText(env.root + "/record-now.err")) ?? ""
            #expect(said.contains("record-now canceled") && said.contains(saved.path), "\(said)")
            #expect(saved.seconds > 0 && saved.seconds < 5, "\(saved.seconds)")
            let wav = try readWAV(saved.path)
            #expect(wav.header.sampleRate == 16000)
            #expect(wav.data == Array(world.fixture.bytes.prefix(wav.data.count)))
        }
    }

    @Test func checkedInXMLMatchesLiveIntrospection() async throws {
        try await TestEnvironment.with { env in
            let world = try DaemonWorld(env)
            try env.writeConfig(world.config())
            try await env.startDaemon()
            let (file, live) = try await IntrospectionXML.compare(
                env, path: DaemonWorld.path, interface: DaemonWorld.interface)
            #expect(file == live, "dbus/org.berth.Berth1.Recorder.xml differs; regenerate with BERTH_UPDATE_DBUS_XML=1")
        }
    }
}
