import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// The `service:NAME` target against the real services plugin: code dropped into `pickup/services/NAME/` becomes
/// a new release (`releases/<id>/` + `current`), the service restarts (or gets its reload signal) and must be
/// ready, a release that does not come up is rolled back with the reason, and `touch` redeploys.
@Suite(.serialized) struct ServiceCodeTargetTests {
    static let services = "/org/berth/Berth1/services"

    func property(_ pickup: PickupHarness, _ name: String, _ property: String) async throws -> DBusValue {
        try await pickup.client.getProperty(
            "org.berth.Berth1", BusPath.encode(Self.services, name), "org.berth.Berth1.Service", property)
    }

    func define(_ pickup: PickupHarness, _ name: String, _ yaml: String) async throws {
        _ = try await pickup.client.call(
            "org.berth.Berth1", Self.services, "org.berth.Berth1.Services", "Define", [.string(name), .string(yaml)])
    }

    func start(_ pickup: PickupHarness, _ name: String) async throws {
        _ = try await pickup.client.call(
            "org.berth.Berth1", Self.services, "org.berth.Berth1.Services", "Start", [.string(name)])
        try await waitUntil("\(name) is active") { (try? await property(pickup, name, "State"))?.string == "active" }
    }

    /// `sh app.sh` in the current release: reports the release's `version` file as its status once ready.
    static let app = """
        v=$(cat version)
        systemd-notify --ready --status="$v"
        exec sleep 300

        """

    @Test func codeDropRestartsOnTheNewReleaseAndABadReleaseIsRolledBack() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libServicesPlugin.so"])
            let pickup = try await PickupHarness.start(env)
            let code = env.stateHome + "/berth/services/code/lab"
            try await define(pickup, "lab", "exec: [sh, app.sh]\nready: notify\nrestart: \"no\"\nstart_timeout: 3s\n")
            let folder = pickup.folder("services") + "/lab"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            // Not running yet: the files become releases; the service starts on the current one.
            try Files.write(folder + "/app.sh", Self.app)
            try Files.write(folder + "/version", "v1")
            #expect(try await pickup.waitFor("app.sh")[0].ok)
            #expect(try await pickup.waitFor("version")[0].ok)
            #expect(try await pickup.waitFor("version")[0].target == "service:lab")
            try await start(pickup, "lab")
            #expect(try await property(pickup, "lab", "StatusText").string == "v1")
            let first = try FileManager.default.destinationOfSymbolicLink(atPath: code + "/current")
            let pid = try await property(pickup, "lab", "MainPID")

            // A new version: a new release, the service restarted on it and ready.
            try Files.write(folder + "/version", "v2")
            let second = try await pickup.waitFor("version", count: 2)
            #expect(second[1].ok, "\(second[1])")
            #expect(try await property(pickup, "lab", "StatusText").string == "v2")
            #expect(try await property(pickup, "lab", "MainPID") != pid)
            let release2 = try FileManager.default.destinationOfSymbolicLink(atPath: code + "/current")
            #expect(release2 != first && release2.hasPrefix("releases/"))
            #expect(try String(contentsOfFile: code + "/" + release2 + "/app.sh", encoding: .utf8) == Self.app)
            #expect(try String(contentsOfFile: code + "/" + first + "/version", encoding: .utf8) == "v1")

            // A release that does not become ready: the deployment fails with the reason, the previous release
            // is back and running.
            try Files.write(folder + "/app.sh", "echo broken >&2\nexit 4\n")
            let bad = try await pickup.waitFor("app.sh", count: 2)
            #expect(!bad[1].ok, "\(bad[1])")
            #expect(
                bad[1].detail.contains("did not become ready on release")
                    && bad[1].detail.contains("exited before it became ready")
                    && bad[1].detail.contains("release \(FileSystem.baseName(release2)) is back"),
                "\(bad[1].detail)")
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: code + "/current") == release2)
            try await waitUntil("lab runs the previous release") {
                (try? await property(pickup, "lab", "State"))?.string == "active"
            }
            #expect(try await property(pickup, "lab", "StatusText").string == "v2")

            // touch redeploys (Zato's way to force it): a new release with the same files, restarted.
            try Files.write(folder + "/app.sh", Self.app)
            #expect(try await pickup.waitFor("app.sh", count: 3)[2].ok)
            let before = try await property(pickup, "lab", "MainPID")
            let touch = try await env.run(["touch", folder + "/app.sh"])
            #expect(touch.status == 0)
            #expect(try await pickup.waitFor("app.sh", count: 4)[3].ok)
            #expect(try await property(pickup, "lab", "MainPID") != before)

            // A subfolder of a code folder is reported, not ignored.
            try FileManager.default.createDirectory(atPath: folder + "/pkg", withIntermediateDirectories: true)
            try Files.write(folder + "/pkg/mod.py", "x = 1\n")
            let nested = try await pickup.waitFor("mod.py")
            #expect(!nested[0].ok && nested[0].detail.contains("takes files, not subfolders"), "\(nested[0])")
        }
    }

    @Test func reloadSignalInsteadOfARestart() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libServicesPlugin.so"])
            let pickup = try await PickupHarness.start(env)
            let folder = pickup.folder("services") + "/pyro"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            // The daemon reloads its drivers from `current` on SIGHUP (as a Pyro5 daemon re-importing modules).
            let app = """
                trap 'cat "$CODE/current/driver" > "$OUT"' HUP
                cat driver > "$OUT"
                systemd-notify --ready
                while :; do sleep 0.05; done

                """
            let out = env.root + "/driver.out"
            let code = env.stateHome + "/berth/services/code/pyro"
            try await define(
                pickup, "pyro",
                "exec: [sh, app.sh]\nready: notify\nreload_signal: HUP\nenv: { CODE: \(code), OUT: \(out) }\n")
            try Files.write(folder + "/app.sh", app)
            try Files.write(folder + "/driver", "laser-1")
            #expect(try await pickup.waitFor("app.sh")[0].ok)
            #expect(try await pickup.waitFor("driver")[0].ok)
            try await start(pickup, "pyro")
            let pid = try await property(pickup, "pyro", "MainPID")
            #expect(try String(contentsOfFile: out, encoding: .utf8) == "laser-1")
            try Files.write(folder + "/driver", "laser-2")
            #expect(try await pickup.waitFor("driver", count: 2)[1].ok)
            try await waitUntil("the daemon reloaded its driver") {
                (try? String(contentsOfFile: out, encoding: .utf8)) == "laser-2"
            }
            #expect(try await property(pickup, "pyro", "MainPID") == pid, "signalled, not restarted")
        }
    }

    /// Release ids of service NAME's code folder.
    static func releases(_ code: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: code + "/releases")) ?? []).filter { !$0.hasPrefix(".") }
            .sorted()
    }

    /// Files dropped together (one `cp`: one pickup batch) are ONE release and ONE restart, each file its own
    /// deployment with the shared outcome; a batch whose release does not become ready fails as a whole and the
    /// previous release serves.
    @Test func oneBatchOfFilesIsOneReleaseAndOneRestart() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libServicesPlugin.so"])
            // A settle long enough that one cp of three files is one batch on a loaded machine.
            let pickup = try await PickupHarness.start(env, config: "pickup:\n  settle: 300ms\n")
            let code = env.stateHome + "/berth/services/code/lab"
            let starts = env.root + "/starts"
            // Each start appends the release's version to $STARTS: the service's own count of its starts.
            let app = """
                v=$(cat version)
                echo "$v" >> "$STARTS"
                systemd-notify --ready --status="$v"
                exec sleep 300

                """
            try await define(
                pickup, "lab",
                "exec: [sh, app.sh]\nready: notify\nrestart: \"no\"\nstart_timeout: 3s\nenv: { STARTS: \(starts) }\n")
            let folder = pickup.folder("services") + "/lab"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try Files.write(folder + "/app.sh", app)
            try Files.write(folder + "/version", "v1")
            #expect(try await pickup.waitFor("app.sh")[0].ok)
            #expect(try await pickup.waitFor("version")[0].ok)
            try await start(pickup, "lab")
            func startsSeen() -> [String] {
                ((try? String(contentsOfFile: starts, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
            }
            #expect(startsSeen() == ["v1"])
            let before = Self.releases(code)

            // Three files by one cp: one new release with all of them and the earlier files, one restart.
            let staging = env.root + "/staging"
            try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
            try Files.write(staging + "/a.py", "a = 1\n")
            try Files.write(staging + "/b.py", "b = 1\n")
            try Files.write(staging + "/version", "v2")
            let copy = try await env.run(["cp", staging + "/a.py", staging + "/b.py", staging + "/version", folder])
            #expect(copy.status == 0)
            #expect(try await pickup.waitFor("a.py")[0].ok)
            #expect(try await pickup.waitFor("b.py")[0].ok)
            #expect(try await pickup.waitFor("version", count: 2)[1].ok)
            let after = Self.releases(code)
            #expect(after.count == before.count + 1, "releases \(before) then \(after)")
            #expect(startsSeen() == ["v1", "v2"], "one restart for the batch")
            #expect(try await property(pickup, "lab", "StatusText").string == "v2")
            let release2 = try FileManager.default.destinationOfSymbolicLink(atPath: code + "/current")
            #expect(
                Set(try FileManager.default.contentsOfDirectory(atPath: code + "/" + release2))
                    == ["app.sh", "a.py", "b.py", "version"])
            let rows = try await pickup.deployments().filter { $0[2] == "service:lab" }
            let deployedRows = rows.filter { $0[3] == "deployed" }.map { $0[1] }
            #expect(deployedRows.sorted() == ["a.py", "app.sh", "b.py", "version", "version"], "\(rows)")

            // A batch whose release does not become ready: all three fail with the reason, the previous release
            // comes back and serves (one failed start, one start on the previous release).
            try Files.write(staging + "/app.sh", "echo broken >&2\nexit 4\n")
            try Files.write(staging + "/a.py", "a = 2\n")
            try Files.write(staging + "/c.py", "c = 1\n")
            let bad = try await env.run(["cp", staging + "/app.sh", staging + "/a.py", staging + "/c.py", folder])
            #expect(bad.status == 0)
            let failed = [
                try await pickup.waitFor("app.sh", count: 2)[1], try await pickup.waitFor("a.py", count: 2)[1],
                try await pickup.waitFor("c.py")[0],
            ]
            for outcome in failed {
                #expect(!outcome.ok, "\(outcome)")
                #expect(
                    outcome.detail.contains("did not become ready on release")
                        && outcome.detail.contains("\"app.sh\", \"a.py\", \"c.py\"")
                        && outcome.detail.contains("release \(FileSystem.baseName(release2)) is back"),
                    "\(outcome.detail)")
            }
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: code + "/current") == release2)
            #expect(Self.releases(code) == after, "the failed release is gone")
            try await waitUntil("lab runs the previous release") {
                (try? await property(pickup, "lab", "State"))?.string == "active"
            }
            #expect(try await property(pickup, "lab", "StatusText").string == "v2")
            #expect(startsSeen() == ["v1", "v2", "v2"])
            let failedRows = try await pickup.deployments().filter { $0[2] == "service:lab" && $0[3] == "failed" }
            #expect(Set(failedRows.map { $0[1] }) == ["app.sh", "a.py", "c.py"])
        }
    }
}
