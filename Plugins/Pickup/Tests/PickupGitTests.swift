import BerthKit
import BerthTestSupport
import Foundation
import Synchronization
import Testing

/// Pickup folders fed by git: a bare repository on disk as the remote, commits that add, change, rename and
/// delete files, a force-push, the remote gone, and local edits in the clone.
@Suite(.serialized) struct PickupGitTests {
    /// Every Deployed signal as (name, sha256, commit).
    final class Deployments: Sendable {
        let seen = Mutex<[(name: String, sha256: String, commit: String)]>([])

        init(_ client: BusConnection) async throws {
            let stream = try await client.signals(path: PickupHarness.path, interface: PickupHarness.interface)
            Task { [weak self] in
                for await signal in stream where signal.member == "Deployed" {
                    let f = signal.arguments.map { $0.string ?? "" }
                    guard f.count == 5 else { continue }
                    self?.seen.withLock { $0.append((f[1], f[3], f[4])) }
                }
            }
        }

        func of(_ name: String) -> [(sha256: String, commit: String)] {
            seen.withLock { $0.filter { $0.name == name }.map { ($0.sha256, $0.commit) } }
        }
    }

    func git(_ env: TestEnvironment, _ dir: String, _ args: [String]) async throws -> String {
        let result = try await env.run(
            ["git", "-C", dir, "-c", "user.name=berth test", "-c", "user.email=test@berth.invalid"] + args,
            environment: ["GIT_CONFIG_NOSYSTEM": "1"])
        guard result.status == 0 else { throw TestFailure("git \(args.joined(separator: " ")): \(result)") }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func gitFolders(_ harness: PickupHarness) async throws -> [[String]] {
        let value = try await harness.client.getProperty(
            "org.berth.Berth1", PickupHarness.path, PickupHarness.interface, "GitFolders")
        return (value.items ?? []).map { ($0.items ?? []).map { $0.string ?? "" } }
    }

    @Test func commitsDeployOnceEachForcePushConvergesFailuresAndLocalEditsAreReported() async throws {
        try await TestEnvironment.with { env in
            let remote = env.root + "/remote.git"
            let work = env.root + "/work"
            _ = try await git(env, env.root, ["init", "-q", "--bare", "-b", "main", remote])
            _ = try await git(env, env.root, ["init", "-q", "-b", "main", work])
            _ = try await git(env, work, ["remote", "add", "origin", remote])
            try Files.write(work + "/a.txt", "a1")
            try Files.write(work + "/b.txt", "b1")
            _ = try await git(env, work, ["add", "-A"])
            _ = try await git(env, work, ["commit", "-q", "-m", "one"])
            let c1 = try await git(env, work, ["rev-parse", "HEAD"])
            _ = try await git(env, work, ["push", "-q", "origin", "main"])

            // Subscribed before the daemon starts: the first fetch may deploy before the harness is back.
            let listener = try env.connect()
            defer { listener.close() }
            let deployed = try await Deployments(listener)
            let harness = try await PickupHarness.start(
                env,
                config: """
                    pickup:
                      dirs:
                        site:
                          git: {url: "\(remote)", branch: main, interval: 1s}
                          target: files
                          undeploy_on_delete: true

                    """)
            let clone = harness.stateDir + "/git/site"
            // The first fetch deploys the branch; each Deployed names the commit.
            try await harness.waitFor("a.txt")
            try await harness.waitFor("b.txt")
            try await waitUntil("Deployed of a.txt and b.txt seen with their commit") {
                deployed.of("a.txt").count == 1 && deployed.of("b.txt").count == 1
            }
            #expect(deployed.of("a.txt").first?.commit == c1)
            // GitFolders is published once the batch is done, which may be after its Deployed signals arrive.
            try await waitUntil("GitFolders names c1") {
                try await gitFolders(harness) == [["site", remote, "main", c1, ""]]
            }

            // Change, rename, add: each changed file deploys once, with the new commit; the renamed one undeploys.
            try Files.write(work + "/a.txt", "a2")
            _ = try await git(env, work, ["mv", "b.txt", "c.txt"])
            try Files.write(work + "/d.txt", "d1")
            _ = try await git(env, work, ["add", "-A"])
            _ = try await git(env, work, ["commit", "-q", "-m", "two"])
            let c2 = try await git(env, work, ["rev-parse", "HEAD"])
            _ = try await git(env, work, ["push", "-q", "origin", "main"])
            let pull = try await env.berthctl(["pickup", "pull", "site"])
            #expect(pull.status == 0 && pull.stdout == "pickup folder \"site\" is at commit \(c2)\n", "\(pull)")
            try await harness.waitFor("a.txt", count: 2)
            try await harness.waitFor("c.txt")
            try await harness.waitFor("d.txt")
            try await harness.barrier(in: harness.folder("files"))
            // Two more intervals: nothing deploys again.
            try await Task.sleep(for: .milliseconds(2500))
            #expect(
                harness.outcomes(named: "a.txt").count == 2 && harness.outcomes(named: "c.txt").count == 1
                    && harness.outcomes(named: "d.txt").count == 1 && harness.outcomes(named: "b.txt").count == 1,
                "\(harness.outcomes.map(\.name))")
            #expect(
                deployed.of("a.txt").last?.commit == c2 && deployed.of("c.txt").first?.commit == c2
                    && deployed.of("d.txt").first?.commit == c2)
            let rows = try await harness.deployments()
            #expect(rows.contains { $0[1] == "b.txt" && $0[3] == "undeployed" }, "\(rows)")

            // A force-push to a branch based on the first commit: the clone follows it.
            _ = try await git(env, work, ["reset", "-q", "--hard", c1])
            try Files.write(work + "/a.txt", "a3")
            _ = try await git(env, work, ["commit", "-q", "-am", "three"])
            let c3 = try await git(env, work, ["rev-parse", "HEAD"])
            _ = try await git(env, work, ["push", "-q", "-f", "origin", "main"])
            try await waitUntil("the clone is at the force-pushed commit", timeout: .seconds(10)) {
                (try await gitFolders(harness)).first?[3] == c3
            }
            try await harness.waitFor("a.txt", count: 3)
            try await harness.waitFor("b.txt", count: 2)
            let a3 = try await Files.sha256(of: "a3")
            try await waitUntil("a.txt deployed with a3 of the force-pushed commit") {
                deployed.of("a.txt").last.map { $0 == (a3, c3) } ?? false
            }
            #expect(try await git(env, clone, ["rev-parse", "HEAD"]) == c3)
            #expect(!FileManager.default.fileExists(atPath: clone + "/c.txt"))

            // The remote gone: Pull fails with the reason, LastError says it; back again, the next interval clears it.
            try FileManager.default.moveItem(atPath: remote, toPath: remote + ".away")
            let down = try await env.berthctl(["pickup", "pull", "site"])
            #expect(down.status == 1 && down.stderr.contains("git fetch of \(remote) (branch main) failed"), "\(down)")
            #expect((try await gitFolders(harness)).first?[4].contains("git fetch of \(remote)") == true)
            try FileManager.default.moveItem(atPath: remote + ".away", toPath: remote)
            try await waitUntil("LastError clears once the remote is back", timeout: .seconds(10)) {
                (try await gitFolders(harness)).first?[4] == ""
            }

            // Local edits in the clone are never overwritten: the update is refused and said so.
            try Files.write(clone + "/a.txt", "edited on the host")
            try Files.write(work + "/e.txt", "e1")
            _ = try await git(env, work, ["add", "-A"])
            _ = try await git(env, work, ["commit", "-q", "-m", "four"])
            _ = try await git(env, work, ["push", "-q", "origin", "main"])
            let refused = try await env.berthctl(["pickup", "pull", "site"])
            #expect(refused.status == 1 && refused.stderr.contains("has local edits (M a.txt)"), "\(refused)")
            #expect(try String(contentsOfFile: clone + "/a.txt", encoding: .utf8) == "edited on the host")
            let folders = try await gitFolders(harness)
            #expect(folders.first?[3] == c3 && folders.first?[4].contains("has local edits") == true, "\(folders)")
            #expect(!FileManager.default.fileExists(atPath: clone + "/e.txt"))

            // Config as code: the export gives the folder's git source, not its clone; importing it changes nothing,
            // and a git folder cannot be added or changed by an import.
            let export = try await env.berthctl(["config", "export"])
            #expect(
                export.status == 0 && export.stdout.contains("url: \(remote)") && !export.stdout.contains(clone),
                "\(export)")
            try FileSystem.writeAtomically(env.root + "/export.yaml", text: export.stdout)
            let again = try await env.berthctl(["config", "import", env.root + "/export.yaml"])
            #expect(again.status == 0, "\(again)")
            try FileSystem.writeAtomically(
                env.root + "/other.yaml",
                text: "pickup:\n  dirs:\n    site:\n      git: {url: /elsewhere.git}\n      target: files\n")
            let changed = try await env.berthctl(["config", "import", env.root + "/other.yaml"])
            #expect(
                changed.status == 1 && changed.stderr.contains("is fed by git; git folders are set in the config file"),
                "\(changed)")

            let unknown = try await env.berthctl(["pickup", "pull", "nosuch"])
            #expect(
                unknown.status == 1
                    && unknown.stderr.contains("pickup has no git folder \"nosuch\" (git folders: site)"),
                "\(unknown)")
        }
    }

    @Test func sshRemoteDeploysAndAFetchThatHangsDoesNotHoldTheStop() async throws {
        try await TestEnvironment.with { env in
            let ssh = try await SSHServer.start(in: env.root + "/ssh")
            defer { ssh.stop() }
            let silent = try SilentHost()
            defer { silent.stop() }
            // berthd's git uses this test's ssh config (berthd's HOME is the test folder).
            try FileSystem.writeAtomically(
                env.root + "/.gitconfig", text: "[core]\n\tsshCommand = ssh -F \(ssh.configFile)\n")
            let remote = env.root + "/remote.git"
            let work = env.root + "/work"
            _ = try await git(env, env.root, ["init", "-q", "--bare", "-b", "main", remote])
            _ = try await git(env, env.root, ["init", "-q", "-b", "main", work])
            try Files.write(work + "/x.txt", "x1")
            _ = try await git(env, work, ["add", "-A"])
            _ = try await git(env, work, ["commit", "-q", "-m", "x"])
            _ = try await git(env, work, ["push", "-q", remote, "main"])
            let harness = try await PickupHarness.start(
                env,
                config: """
                    pickup:
                      dirs:
                        viassh:
                          git: {url: "ssh://127.0.0.1:\(ssh.port)\(remote)", interval: 1s}
                          target: files
                        hung:
                          git: {url: "ssh://127.0.0.1:\(silent.port)/x.git", interval: 1s}
                          target: files

                    """)
            try await harness.waitFor("x.txt", timeout: .seconds(20))
            try await waitUntil("a fetch from the silent host is running") {
                !runningProcesses(mentioning: "127.0.0.1 -p \(silent.port)").isEmpty
                    || !runningProcesses(mentioning: "-p \(silent.port) 127.0.0.1").isEmpty
            }
            let start = ContinuousClock.now
            try await harness.stopDaemon()
            #expect(ContinuousClock.now - start < .seconds(8), "the stop took \(ContinuousClock.now - start)")
            try await waitUntil("no git or ssh of the silent host is left", timeout: .seconds(5)) {
                runningProcesses(mentioning: "\(silent.port)").isEmpty
            }
        }
    }

    @Test func gitConfigIsStrict() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libPickupPlugin.so"])
            let cases = [
                ("git: {url: /x, brnch: main}", "pickup.dirs.site.git.brnch: unknown key \"brnch\""),
                ("git: {branch: main}", "pickup.dirs.site.git: missing required key \"url\""),
                ("git: {url: /x, branch: \"a..b\"}", "pickup.dirs.site.git.branch: \"a..b\" is not a branch name"),
                ("git: {url: /x, interval: 10ms}", "pickup.dirs.site.git.interval: must be 100ms to 24h"),
                ("path: /tmp\n      git: {url: /x}", "pickup.dirs.site.path: a git folder's path is its clone"),
            ]
            for (folder, message) in cases {
                try env.writeConfig("pickup:\n  dirs:\n    site:\n      target: files\n      \(folder)\n")
                let check = try await env.berthctl(["config", "check", env.configFile, "--plugin-dir", env.pluginDir])
                #expect(check.status != 0 && (check.stdout + check.stderr).contains(message), "\(folder)\n\(check)")
            }
        }
    }
}
