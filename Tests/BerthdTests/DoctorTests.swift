import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// `berthctl doctor` against a real berthd on a private bus. PATH has no systemctl, so the unit check says it
/// cannot check (there is no systemd user manager on the build machines anyway) and the rest is deterministic.
@Suite struct DoctorTests {
    static let noSystemctl = ["PATH": "/nonexistent"]

    func doctor(_ env: TestEnvironment, _ args: [String] = [], environment: [String: String] = [:]) async throws
        -> CommandResult
    {
        try await env.run([TestEnvironment.buildDir + "/berthctl", "doctor"] + args,
            environment: Self.noSystemctl.merging(environment) { $1 })
    }

    func line(_ result: CommandResult, _ status: String, _ name: String) -> String? {
        result.stdout.split(separator: "\n").map(String.init).first { $0.hasPrefix(status) && $0.contains(name) }
    }

    @Test func healthySetupPasses() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libTestFixtureGood.so"])
            let daemon = try await env.startDaemon()
            let r = try await doctor(env)
            #expect(r.status == 0, "\(r)")
            #expect(line(r, "ok", "runtime folder")?.contains("XDG_RUNTIME_DIR=\(env.runtimeDir)") == true, "\(r)")
            #expect(line(r, "ok", "user bus")?.contains(env.bus.address) == true, "\(r)")
            #expect(line(r, "ok", "daemon")?.contains("(pid \(daemon.pid))") == true, "\(r)")
            #expect(line(r, "ok", "plugin fixture")?.hasSuffix("active") == true, "\(r)")
            #expect(line(r, "skip", "user unit")?.contains("systemctl is not installed") == true, "\(r)")
            #expect(r.stdout.contains("all checks passed"), "\(r)")
        }
    }

    @Test func daemonNotRunningFailsWithFix() async throws {
        try await TestEnvironment.with { env in
            let r = try await doctor(env)
            #expect(r.status == 1, "\(r)")
            #expect(line(r, "FAIL", "daemon")?.contains("berthd does not answer on the session bus") == true, "\(r)")
            #expect(r.stdout.contains("fix: systemctl --user enable --now berthd"), "\(r)")
            #expect(r.stdout.contains("1 check failed"), "\(r)")
        }
    }

    @Test func failedPluginIsReportedWithItsReason() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libTestFixtureGood.so"])
            try env.writeConfig("fixture: { fail_start: true }\n")
            try await env.startDaemon()
            let r = try await doctor(env)
            #expect(r.status == 1, "\(r)")
            let failed = try #require(line(r, "FAIL", "plugin fixture"), "\(r)")
            #expect(failed.contains("failed: plugin \"fixture\" failed to start: fail_start is set"), "\(r)")
            #expect(r.stdout.contains("then systemctl --user reload berthd"), "\(r)")
        }
    }

    @Test func missingRuntimeFolderAfterSuIsExplained() async throws {
        try await TestEnvironment.with { env in
            // As after `su`: no XDG_RUNTIME_DIR (empty counts as unset), SUDO_USER names the first user.
            let r = try await doctor(env, environment: ["XDG_RUNTIME_DIR": "", "SUDO_USER": "someone"])
            #expect(r.status == 1, "\(r)")
            let failed = try #require(line(r, "FAIL", "runtime folder"), "\(r)")
            #expect(failed.contains("XDG_RUNTIME_DIR is not set (su and sudo do not set it up"), "\(r)")
            #expect(r.stdout.contains("export XDG_RUNTIME_DIR=/run/user/\(getuid())"), "\(r)")
        }
    }

    @Test func someoneElsesRuntimeFolderIsRejected() async throws {
        try await TestEnvironment.with { env in
            let other = env.root + "/other-run"
            try FileSystem.makeDirectories(other, mode: 0o755)
            let otherUID: uid_t = getuid() == 0 ? 65534 : 0
            guard chown(other, otherUID, gid_t(otherUID)) == 0 else { return }  // needs root; skipped otherwise
            let r = try await doctor(env, environment: ["XDG_RUNTIME_DIR": other])
            #expect(r.status == 1, "\(r)")
            #expect(line(r, "FAIL", "runtime folder")?.contains("belongs to uid \(otherUID)") == true, "\(r)")
        }
    }

    @Test func unreachableBusNamesTheAddress() async throws {
        try await TestEnvironment.with { env in
            let address = "unix:path=\(env.root)/no-such-bus"
            let r = try await doctor(env, environment: ["DBUS_SESSION_BUS_ADDRESS": address])
            #expect(r.status == 1, "\(r)")
            #expect(line(r, "FAIL", "user bus")?.contains("cannot connect to the session bus") == true, "\(r)")
            #expect(r.stdout.contains("fix: DBUS_SESSION_BUS_ADDRESS=\(address) is not"), "\(r)")
        }
    }

    @Test func jsonListsEveryCheck() async throws {
        try await TestEnvironment.with { env in
            try await env.startDaemon()
            let r = try await doctor(env, ["--json"])
            #expect(r.status == 0, "\(r)")
            let checks = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
            #expect(checks.map { $0["check"] as? String } == ["runtime folder", "user bus", "linger", "user unit", "daemon", "plugins"])
            #expect(checks.last?["status"] as? String == "warn", "\(r)")
        }
    }
}
