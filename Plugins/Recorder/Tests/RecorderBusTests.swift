import BerthKit
import BerthTestSupport
import Foundation
import Testing

@testable import RecorderPlugin

/// The recorder through berthd on a private bus, with real clients (busctl, gdbus, berthctl, BerthKit's client)
/// and a raw fixture played by an inline ALSA file PCM.
@Suite(.serialized) struct RecorderBusTests {
    @Test func startDeploymentRefusesBadArgumentsWithNamedErrors() async throws {
        try await TestEnvironment.with { env in
            let world = try DaemonWorld(env)
            try env.writeConfig(world.config(["schedule: {duration: 0.2, interval: 60}"]))
            try await env.startDaemon()
            let empty = try await world.failure(
                "StartDeployment", [.string("  "), .double(0), .double(0), .vardict([])])
            #expect(empty.name == "org.berth.Berth1.Error.InvalidArgument" && empty.message.contains("needs a name"))
            let latitude = try await world.failure(
                "StartDeployment", [.string("pond"), .double(91), .double(0), .vardict([])])
            #expect(latitude.name == "org.berth.Berth1.Error.InvalidArgument", "\(latitude)")
            #expect(latitude.message == "recorder: latitude 91.0 is not between -90 and 90", "\(latitude)")
            let option = try await world.failure(
                "StartDeployment", [.string("pond"), .double(1), .double(2), .vardict([("forse", .bool(true))])])
            #expect(option.name == "org.berth.Berth1.Error.InvalidArgument" && option.message.contains("\"forse\""))
            // Issue 20: a name with a newline and an escape sequence, a path, and a 256-character name.
            for (name, text) in [
                ("pond\n\u{1B}[2J", "U+000A at position 5"), ("../../etc/passwd", "holds \"/\" at position 3"),
                (String(repeating: "n", count: 256), "has 256 characters; at most 100"),
            ] {
                let refused = try await world.failure(
                    "StartDeployment", [.string(name), .double(1), .double(2), .vardict([])])
                #expect(refused.name == "org.berth.Berth1.Error.InvalidArgument", "\(refused)")
                #expect(refused.message.hasPrefix("recorder: deployment name \"") && refused.message.contains(text))
                #expect(!refused.message.contains("\n") && !refused.message.contains("\u{1B}"), "\(refused.message)")
            }
            let tiny = try await world.failure("RecordNow", [.double(.leastNonzeroMagnitude)])
            #expect(tiny.name == "org.berth.Berth1.Error.InvalidArgument", "\(tiny)")
            #expect(tiny.message.contains("must be between 0.01 and 86400 seconds"), "\(tiny.message)")
            // busctl: longitude out of range.
            let bad = try await env.busctl([
                "call", "org.berth.Berth1", DaemonWorld.path, DaemonWorld.interface, "StartDeployment", "sdda{sv}",
                "pond", "10", "181", "0",
            ])
            #expect(bad.status != 0 && bad.stderr.contains("longitude 181.0 is not between -180 and 180"), "\(bad)")
            // A good one through gdbus, then a second is AlreadyExists.
            let good = try await env.gdbus([
                "call", "@BUS", "--dest", "org.berth.Berth1", "--object-path", DaemonWorld.path, "--method",
                "\(DaemonWorld.interface).StartDeployment", "pond", "51.5", "0.12", "{}",
            ])
            #expect(good.status == 0, "\(good)")
            let again = try await world.failure(
                "StartDeployment", [.string("lake"), .double(1), .double(2), .vardict([])])
            #expect(again.name == "org.berth.Berth1.Error.AlreadyExists" && again.message.contains("\"pond\""))
            let deployment = try await world.property("Deployment")
            #expect(deployment.stringKeyed?["name"]?.unwrapped == .string("pond"))
            #expect(deployment.stringKeyed?["latitude"]?.unwrapped == .double(51.5))
            // A deployment is active: berthctl says so before asking anything.
            let asked = try await env.berthctl([
                "recorder", "deployment", "start", "--latitude", "1", "--longitude", "2",
            ])
            #expect(asked.status != 0 && asked.stderr.contains("a deployment is already active (\"pond\")"), "\(asked)")
            let stop = try await env.berthctl(["recorder", "deployment", "stop"])
            #expect(stop.status == 0 && stop.stdout == "Deployment stopped\n", "\(stop)")
            // berthctl without a terminal: a missing name is an error, not a prompt.
            let noName = try await env.berthctl([
                "recorder", "deployment", "start", "--latitude", "1", "--longitude", "2",
            ])
            #expect(noName.status != 0 && noName.stderr.contains("--name is required"), "\(noName)")
            // On a terminal (script(1) gives berthctl a pty): each answer is checked as it is given; 95 is asked again.
            let tty = try await env.run(
                ["script", "-qec", TestEnvironment.buildDir + "/berthctl recorder deployment start", "/dev/null"],
                input: "lake\n95\n-33.9\n-18.4\n")
            #expect(tty.stdout.contains("latitude must be from -90.0 to 90.0, not 95"), "\(tty)")
            #expect(tty.stdout.contains("Deployment \"lake\" started") && tty.stdout.contains("-33.9, -18.4"), "\(tty)")
            #expect(try await env.berthctl(["recorder", "deployment", "stop"]).status == 0)
            let stopAgain = try await world.failure("StopDeployment", [])
            #expect(stopAgain.name == "org.berth.Berth1.Error.NotFound", "\(stopAgain)")
            #expect(try await world.property("Deployment") == .dictionary(key: "s", value: "v", []))
        }
    }

    @Test func deploymentRecordsTheFixtureAndReportsHonestly() async throws {
        try await TestEnvironment.with { env in
            let world = try DaemonWorld(env)
            try env.writeConfig(world.config(["heartbeat_interval: 0.3", "schedule: {duration: 0.5, interval: 1}"]))
            try await env.startDaemon()
            let check = try await env.berthctl(["recorder", "check"])
            #expect(check.status == 0 && check.stdout == "Health checks passed\n", "\(check)")
            let signals = try await SignalLog(env, path: DaemonWorld.path)
            let start = try await env.berthctl([
                "recorder", "deployment", "start", "--name", "meadow", "--latitude", "52.2", "--longitude", "0.1",
            ])
            #expect(start.status == 0 && start.stdout.hasPrefix("Deployment \"meadow\" started"), "\(start)")
            let saved = try await signals.wait("RecordingSaved", count: 2).map(Saved.init)
            let expected = world.fixture.expectedData(0..<24000)
            for file in saved {
                #expect(file.seconds == 0.5)
                #expect(file.path.hasPrefix(world.storage + "/recordings/"), "\(file.path)")
                let wav = try readWAV(file.path)
                #expect(wav.header.sampleRate == 48000 && wav.header.channels == 1)
                #expect(wav.data == expected, "\(file.path) does not hold the fixture's first 0.5 s")
            }
            #expect(signals.all("RecordingStarted").count >= 2)
            try await signals.wait("Heartbeat")
            // Properties follow the engine.
            #expect(try await world.property("RecordingsCount").uint64 ?? 0 >= 2)
            #expect(try await world.property("SampleRate") == .uint32(48000))
            #expect(try await world.property("Device") == .string("fixture"))
            #expect(try await world.property("LastHeartbeatUSec").uint64 ?? 0 > 0)
            let state = try await world.property("State").string
            #expect(state == "scheduled" || state == "recording", "\(String(describing: state))")
            // ListRecordings matches the signals (oldest first).
            let listed = try await world.call("ListRecordings", [.uint64(0), .uint32(0)]).first?.items ?? []
            let ids = listed.compactMap { $0.items?[0].string }
            #expect(Array(ids.prefix(2)) == saved.prefix(2).map(\.id))
            #expect(listed.first?.items?[3] == .uint64(500_000) && listed.first?.items?[4] == .uint32(48000))
            // Issue 15: `-n 1` is the newest recording; --oldest-first gives the oldest.
            let oldest = try await env.berthctl(["recorder", "recordings", "--json", "-n", "1", "--oldest-first"])
            #expect(oldest.status == 0 && oldest.stdout.contains(saved[0].path), "\(oldest)")
            let newest = try await env.berthctl(["recorder", "recordings", "--json", "-n", "1"])
            #expect(newest.status == 0 && !newest.stdout.contains(saved[0].path), "\(newest)")
            let newestStart = newest.stdout.split(separator: "\"start_usec\":").last.flatMap {
                UInt64($0.prefix { $0.isNumber })
            }
            #expect((newestStart ?? 0) >= saved[1].startUSec, "\(newest)")
            // Issue 15: a WAV removed by hand is shown deleted (missing), and said so by a signal.
            #expect(unlink(saved[0].path) == 0)
            let rescan = try await env.berthctl(["recorder", "rescan"])
            #expect(rescan.status == 0 && rescan.stdout == "1 recording(s) missing, marked deleted\n", "\(rescan)")
            let table = try await env.berthctl(["recorder", "recordings", "--oldest-first"])
            let line = table.stdout.split(separator: "\n").first { $0.hasPrefix(saved[0].id) } ?? ""
            #expect(line.contains("deleted (missing)"), "\(table)")
            #expect(table.stdout.hasPrefix("ID "), "\(table)")
            let gone = try await signals.wait("RecordingDeleted")
            #expect(gone.first?.arguments == [.string(saved[0].id), .string("missing")])
            let after15 = try await world.call("ListRecordings", [.uint64(0), .uint32(0)]).first?.items ?? []
            #expect(!after15.contains { $0.items?[0].string == saved[0].id })
            // DeleteRecording through berthctl: the file goes, the row stays.
            let delete = try await env.berthctl(["recorder", "delete", saved[1].id])
            #expect(delete.status == 0 && delete.stdout == "Recording \(saved[1].id) deleted\n", "\(delete)")
            #expect(access(saved[1].path, F_OK) != 0)
            let twice = try await env.berthctl(["recorder", "delete", saved[1].id])
            #expect(twice.status != 0 && twice.stderr.contains("already deleted"), "\(twice)")
            // Status: acoupi's headings, honest.
            let status = try await env.berthctl(["recorder", "deployment", "status"])
            #expect(status.status == 0, "\(status)")
            for line in [
                "daemon:      status: active", "workers:     status: ok", "program:     status: ok",
                "deployment:  status: active", "  name:      meadow",
            ] {
                #expect(status.stdout.contains(line), "missing \"\(line)\" in\n\(status.stdout)")
            }
            let busctl = try await env.busctl([
                "get-property", "org.berth.Berth1", DaemonWorld.path, DaemonWorld.interface, "Channels",
            ])
            #expect(busctl.stdout == "u 1\n", "\(busctl)")
            #expect(try await env.berthctl(["recorder", "deployment", "stop"]).status == 0)
            let after = try await env.berthctl(["recorder", "deployment", "status", "--json"])
            #expect(after.stdout.contains("\"deployment\":\"inactive\""), "\(after)")
            // Without a deployment nothing records: no "next recording at".
            #expect(!after.stdout.contains("next recording at"), "\(after)")
        }
    }

    @Test func unknownPCMFailsChecksAndTheRecorderSaysError() async throws {
        try await TestEnvironment.with { env in
            let world = try DaemonWorld(env)
            try env.writeConfig(world.config(device: "nosuch", ["schedule: {duration: 0.2, interval: 0.5}"]))
            try await env.startDaemon()
            let check = try await env.berthctl(["recorder", "check"])
            #expect(check.status == 1, "\(check)")
            let lines = check.stdout.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].hasPrefix("device: ") && lines[0].contains("nosuch"), "\(check)")
            let refused = try await world.failure(
                "StartDeployment", [.string("pond"), .double(1), .double(2), .vardict([])])
            #expect(refused.name == "org.berth.Berth1.Error.HealthCheckFailed", "\(refused)")
            let forced = try await env.berthctl([
                "recorder", "deployment", "start", "--name", "pond", "--latitude", "1", "--longitude", "2", "--force",
            ])
            #expect(forced.status == 0, "\(forced)")
            try await waitUntil("State is error") { try await world.property("State") == .string("error") }
            let status = try await env.berthctl(["recorder", "deployment", "status"])
            #expect(status.stdout.contains("workers:     status: notok"), "\(status)")
            #expect(status.status == 3, "an unhealthy recorder exits 3, as systemctl is-active does: \(status)")
            #expect(status.stdout.contains("  capture:   notok: "), "\(status)")
            let record = try await env.berthctl(["recorder", "record-now", "0.1"])
            #expect(record.status != 0, "\(record)")
        }
    }

    @Test func badConfigLeavesThePluginFailedWithFileKeyAndLine() async throws {
        try await TestEnvironment.with { env in
            let world = try DaemonWorld(env)
            for (line, key) in [
                ("sample_rate: 0", "sample_rate"), ("channels: 0", "channels"), ("format: U8", "format"),
            ] {
                try env.writeConfig(world.config([line]))
                let check = try await env.run([
                    TestEnvironment.buildDir + "/berthd", "--check-config", "--plugin-dir",
                    env.pluginDir,
                ])
                #expect(check.status != 0, "\(check)")
                #expect(check.stderr.contains("berth.yaml:9: recorder.\(key): "), "\(check)")
            }
            let daemon = try await env.startDaemon()
            let plugin = try await env.busctl([
                "get-property", "org.berth.Berth1", "/org/berth/Berth1/plugin/recorder", "org.berth.Berth1.Plugin",
                "State", "LastError",
            ])
            #expect(plugin.stdout == "s \"failed\"\ns \"invalid-config\"\n", "\(plugin)\n\(daemon.log)")
        }
    }
}
