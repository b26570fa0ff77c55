import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// berthctl -H and --hosts with real parts: an sshd started here on 127.0.0.1, systemd-stdio-bridge run by it, and
/// berthd daemons on private buses, each bus standing for one host.
@Suite(.serialized) struct FleetTests {
    /// A second berthd on its own private bus, with its own XDG folders: a second host behind the same sshd.
    /// hosts.yaml with group `lab`: host `a` (this world's berthd) and host `b` (`other`), both through `ssh`.
    func writeLab(_ env: TestEnvironment, ssh: SSHServer, other: OtherHost) throws {
        try FileSystem.writeAtomically(
            env.configHome + "/berth/hosts.yaml",
            text: """
                hosts:
                  a: {ssh: "\(ssh.destination)", address: "\(env.bus.address)"}
                  b: {ssh: "\(ssh.destination)", address: "\(other.bus.address)"}
                groups:
                  lab: [a, b]

                """)
    }

    final class OtherHost: @unchecked Sendable {
        let bus: PrivateBus
        let daemon: ChildProcess

        init(_ env: TestEnvironment, name: String, plugins: [String] = [], config: String? = nil) async throws {
            let root = env.root + "/" + name
            for dir in ["config/berth", "state", "run", "plugins"] {
                try FileSystem.makeDirectories(root + "/" + dir, mode: 0o700)
            }
            if let config { try FileSystem.writeAtomically(root + "/config/berth/berth.yaml", text: config) }
            for plugin in plugins {
                try FileManager.default.createSymbolicLink(
                    atPath: root + "/plugins/" + plugin, withDestinationPath: TestEnvironment.buildDir + "/" + plugin)
            }
            bus = try await PrivateBus.start(in: root)
            daemon = try ChildProcess.spawn(
                [TestEnvironment.buildDir + "/berthd", "--address", bus.address, "--plugin-dir", root + "/plugins"],
                environment: [
                    "XDG_CONFIG_HOME": root + "/config", "XDG_STATE_HOME": root + "/state",
                    "XDG_RUNTIME_DIR": root + "/run",
                    "DBUS_SESSION_BUS_ADDRESS": bus.address, "HOME": root,
                ], stdout: root + "/berthd.log", stderr: root + "/berthd.log")
            try await bus.waitForName("org.berth.Berth1", timeout: .seconds(20))
        }

        func stop() {
            daemon.terminate()
            bus.stop()
        }
    }

    @Test func oneHostOverSSHAnswersAsLocally() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libTestFixtureGood.so"])
            try await env.startDaemon()
            let ssh = try await SSHServer.start(in: env.root + "/ssh")
            defer { ssh.stop() }
            let remote = ["-H", ssh.destination, "--remote-address", env.bus.address, "--ssh-config", ssh.configFile]
            // The same output and exit code as the same command run here, for listings and for errors.
            for command in [["plugins"], ["jobs"], ["plugins", "restart", "nosuch"], ["config", "export"]] {
                let local = try await env.berthctl(command)
                let there = try await env.berthctl(remote + command)
                #expect(
                    there.status == local.status && there.stdout == local.stdout && there.stderr == local.stderr,
                    "\(command): local \(local)\nremote \(there)")
            }
            // Options after the command, as with every other shared option.
            let status = try await env.berthctl(["status"] + remote)
            #expect(status.status == 0, "\(status)")
            #expect(
                status.stdout.contains("running on the bus at \(env.bus.address) on \(ssh.destination) (over SSH)"),
                "\(status)")
            #expect(status.stdout.contains("plugins: 1 active of 1"), "\(status)")
            // --json adds the host to every object.
            let local = try await env.berthctl(["--json", "plugins"])
            let there = try await env.berthctl(remote + ["--json", "plugins"])
            #expect(there.status == 0)
            #expect(
                there.stdout == local.stdout.replacingOccurrences(of: "[{", with: "[{\"host\":\"\(ssh.destination)\","),
                "\(there)")
            // The SSH config may come from the environment instead of --ssh-config.
            let viaEnv = try await env.run(
                [
                    TestEnvironment.buildDir + "/berthctl", "-H", ssh.destination, "--remote-address", env.bus.address,
                    "plugins",
                ],
                environment: ["BERTH_SSH_CONFIG": ssh.configFile])
            let plugins = try await env.berthctl(["plugins"])
            #expect(viaEnv.status == 0 && viaEnv.stdout == plugins.stdout, "\(viaEnv)")
            // A call that changes the daemon goes through too.
            let restart = try await env.berthctl(remote + ["plugins", "restart", "fixture"])
            #expect(restart.status == 0, "\(restart)")
            // A bus that is not there: one error line after ssh's, exit 1.
            let noBus = try await env.berthctl(
                [
                    "-H", ssh.destination, "--remote-address", "unix:path=\(env.root)/nobus", "--ssh-config",
                    ssh.configFile, "plugins",
                ])
            #expect(noBus.status == 1)
            #expect(
                noBus.stderr.contains(
                    "berthctl: cannot reach the bus at unix:path=\(env.root)/nobus on \(ssh.destination) (over SSH)"),
                "\(noBus)")
        }
    }

    @Test func manyHostsRunInParallelWithOneRowEach() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libTestFixtureGood.so"])
            try await env.startDaemon()
            let other = try await OtherHost(env, name: "b")
            defer { other.stop() }
            let ssh = try await SSHServer.start(in: env.root + "/ssh")
            defer { ssh.stop() }
            let silent = try SilentHost()
            defer { silent.stop() }
            let refused = freePort()
            try FileSystem.writeAtomically(
                env.configHome + "/berth/hosts.yaml",
                text: """
                    hosts:
                      a: {ssh: "\(ssh.destination)", address: "\(env.bus.address)"}
                      b:
                        ssh: \(ssh.destination)
                        address: \(other.bus.address)
                      down: 127.0.0.1:\(refused)
                      silent: 127.0.0.1:\(silent.port)
                    groups:
                      lab: [a, b]
                      all: [lab, down, silent]   # nested

                    """)
            let lab = try await env.berthctl(["--hosts", "lab", "--ssh-config", ssh.configFile, "plugins"])
            #expect(lab.status == 0, "\(lab)")
            let lines = lab.stdout.split(separator: "\n").map(String.init)
            #expect(lines.first == "HOST  RESULT  DETAIL", "\(lab)")
            #expect(lines.contains { $0.hasPrefix("a     ok      ID ") }, "\(lab)")
            #expect(lines.contains { $0.hasPrefix("              fixture ") }, "\(lab)")
            #expect(lines.contains("b     ok      no plugins loaded"), "\(lab)")

            // A host refusing the connection and a host that never answers are failed rows, within the timeout.
            let start = ContinuousClock.now
            let all = try await env.berthctl([
                "--hosts", "all", "--host-timeout", "3", "--ssh-config", ssh.configFile, "--json", "plugins",
            ])
            let elapsed = ContinuousClock.now - start
            #expect(all.status == 1, "\(all)")
            #expect(all.stderr.hasSuffix("berthctl: failed on 2 of 4 hosts: down, silent\n"), "\(all)")
            #expect(elapsed < .seconds(10), "took \(elapsed)")
            let rows = try #require(
                try JSONSerialization.jsonObject(with: Data(all.stdout.utf8)) as? [[String: Any]], "\(all)")
            #expect(rows.map { $0["host"] as? String } == ["a", "b", "down", "silent"])
            #expect(rows.map { $0["result"] as? String } == ["ok", "ok", "failed", "timeout"])
            let aPlugins = rows[0]["output"] as? [[String: Any]]
            #expect(aPlugins?.first?["id"] as? String == "fixture", "\(all)")
            #expect((rows[1]["output"] as? [Any])?.isEmpty == true, "\(all)")
            #expect((rows[2]["error"] as? String)?.contains("Connection refused") == true, "\(all)")
            #expect(rows[3]["error"] as? String == "no answer within 3 s", "\(all)")
            // The silent host's berthctl and ssh were killed, not left waiting.
            try await waitUntil("no ssh of this test is left", timeout: .seconds(5)) {
                runningProcesses(mentioning: "127.0.0.1:\(silent.port)").isEmpty
                    && runningProcesses(mentioning: "-p \(silent.port) ").isEmpty
            }

            // Repeated -H, hosts by name or as [USER@]HOST[:PORT]; a bounded run (one at a time) gives the same rows.
            let repeated = try await env.berthctl(
                [
                    "-H", "a", "-H", "b", "-H", "127.0.0.1:\(refused)", "--parallel", "1", "--ssh-config",
                    ssh.configFile, "jobs",
                ])
            #expect(repeated.status == 1, "\(repeated)")
            #expect(repeated.stdout.contains("a                ok      no jobs"), "\(repeated)")
            #expect(repeated.stderr.hasSuffix("failed on 1 of 3 hosts: 127.0.0.1:\(refused)\n"), "\(repeated)")
            // One silent host with -H: ssh's ConnectTimeout is the host timeout, an error and no hang.
            let silentStart = ContinuousClock.now
            let alone = try await env.berthctl(["-H", "silent", "--host-timeout", "2", "--ssh-config", ssh.configFile, "plugins"])
            #expect(alone.status == 1 && alone.stderr.contains("cannot reach the session bus of silent (over SSH)"), "\(alone)")
            #expect(ContinuousClock.now - silentStart < .seconds(8))
            // One named host with -H: its bus from hosts.yaml, output as locally.
            let one = try await env.berthctl(["-H", "b", "--ssh-config", ssh.configFile, "plugins"])
            #expect(one.status == 0 && one.stdout == "no plugins loaded\n", "\(one)")
        }
    }

    @Test func pickupDeployUploadsTheFileToEveryHost() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libPickupPlugin.so"])
            try await env.startDaemon()
            let other = try await OtherHost(env, name: "b", plugins: ["libPickupPlugin.so"])
            defer { other.stop() }
            let ssh = try await SSHServer.start(in: env.root + "/ssh")
            defer { ssh.stop() }
            try writeLab(env, ssh: ssh, other: other)
            // A file only this machine has: berthd on each host gets its bytes, not its path.
            let local = env.root + "/upload"
            try FileSystem.makeDirectories(local, mode: 0o700)
            try FileSystem.writeAtomically(local + "/page.html", text: "fleet v1")
            let deploy = try await env.berthctl(
                [
                    "--hosts", "lab", "--ssh-config", ssh.configFile, "pickup", "deploy", local + "/page.html",
                    "--target", "files",
                ])
            #expect(deploy.status == 0, "\(deploy)")
            let lines = deploy.stdout.split(separator: "\n").map(String.init)
            #expect(
                lines.count == 3 && lines[1].hasPrefix("a     ok      deployed page.html to files (id ")
                    && lines[2].hasPrefix("b     ok      deployed page.html to files (id "), "\(deploy)")
            for bus in [env.bus.address, other.bus.address] {
                let history = try await env.berthctl(["--address", bus, "--json", "pickup", "history"])
                #expect(
                    history.stdout.contains("\"page.html\"") && history.stdout.contains("\"deployed\""), "\(history)")
            }
            // The outcome comes from the Deployed signal (five arguments since it carries the git commit), not from
            // the deployment log after its 3 s grace period.
            let start = ContinuousClock.now
            let deployedHere = try await env.berthctl(["pickup", "deploy", local + "/page.html", "--target", "files"])
            #expect(deployedHere.status == 0 && ContinuousClock.now - start < .milliseconds(2500), "\(deployedHere)")
            // --fd cannot cross SSH: said so, on every host.
            let fd = try await env.berthctl(
                ["--hosts", "lab", "--ssh-config", ssh.configFile, "pickup", "deploy", "--fd", local + "/page.html"])
            #expect(
                fd.status == 1 && fd.stdout.contains("a     failed  --fd passes a descriptor, which cannot cross SSH"),
                "\(fd)")
        }
    }

    @Test func upRunsOnTheHostThroughSSH() async throws {
        try await TestEnvironment.with { env in
            try await env.startDaemon()
            // The host's berthctl is this build's (sshd gives sessions this PATH).
            let ssh = try await SSHServer.start(
                in: env.root + "/ssh", environment: ["PATH": TestEnvironment.buildDir + ":/usr/local/bin:/usr/bin:/bin"]
            )
            defer { ssh.stop() }
            let local = try await env.berthctl(["--address", env.bus.address, "up"])
            let there = try await env.berthctl(
                ["-H", ssh.destination, "--remote-address", env.bus.address, "--ssh-config", ssh.configFile, "up"])
            #expect(local.status == 0 && local.stdout.hasPrefix("berthd is already running (pid "), "\(local)")
            #expect(there.status == local.status && there.stdout == local.stdout, "local \(local)\nremote \(there)")
            let unreachable = try await env.berthctl(
                ["-H", "127.0.0.1:\(freePort())", "--ssh-config", ssh.configFile, "up"])
            #expect(
                unreachable.status == 255 && unreachable.stderr.contains("berthctl: cannot reach 127.0.0.1:"),
                "\(unreachable)")
        }
    }

    @Test func hostsFedByOneGitRemoteConvergeOnOneCommit() async throws {
        try await TestEnvironment.with { env in
            let remote = env.root + "/remote.git"
            let work = env.root + "/work"
            func git(_ dir: String, _ args: [String]) async throws -> String {
                let result = try await env.run(
                    ["git", "-C", dir, "-c", "user.name=berth test", "-c", "user.email=test@berth.invalid"] + args)
                guard result.status == 0 else { throw TestFailure("git \(args): \(result)") }
                return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            _ = try await git(env.root, ["init", "-q", "--bare", "-b", "main", remote])
            _ = try await git(env.root, ["clone", "-q", remote, work])
            _ = try await git(work, ["checkout", "-q", "-b", "main"])
            try FileSystem.writeAtomically(work + "/svc.txt", text: "v1")
            _ = try await git(work, ["add", "-A"])
            _ = try await git(work, ["commit", "-q", "-m", "v1"])
            _ = try await git(work, ["push", "-q", "origin", "main"])
            // An hour's interval: only Pull moves them.
            let config =
                "pickup:\n  dirs:\n    site:\n      git: {url: \"\(remote)\", branch: main, interval: 1h}\n      target: files\n"
            try env.writeConfig(config)
            try env.installPlugins(["libPickupPlugin.so"])
            try await env.startDaemon()
            let other = try await OtherHost(env, name: "b", plugins: ["libPickupPlugin.so"], config: config)
            defer { other.stop() }
            let ssh = try await SSHServer.start(in: env.root + "/ssh")
            defer { ssh.stop() }
            try writeLab(env, ssh: ssh, other: other)
            try FileSystem.writeAtomically(work + "/svc.txt", text: "v2")
            _ = try await git(work, ["commit", "-q", "-am", "v2"])
            let commit = try await git(work, ["rev-parse", "HEAD"])
            _ = try await git(work, ["push", "-q", "origin", "main"])
            let pull = try await env.berthctl([
                "--hosts", "lab", "--ssh-config", ssh.configFile, "pickup", "pull", "site",
            ])
            #expect(pull.status == 0, "\(pull)")
            #expect(
                pull.stdout == """
                    HOST  RESULT  DETAIL
                    a     ok      pickup folder "site" is at commit \(commit)
                    b     ok      pickup folder "site" is at commit \(commit)

                    """, "\(pull)")
            for state in [env.stateHome, env.root + "/b/state"] {
                try await waitUntil("svc.txt v2 is published on every host") {
                    (try? String(contentsOfFile: state + "/berth/pickup/published/svc.txt", encoding: .utf8)) == "v2"
                }
            }
        }
    }

    @Test func hostsFileIsStrictWithFileAndLine() async throws {
        try await TestEnvironment.with { env in
            let file = env.configHome + "/berth/hosts.yaml"
            let cases: [(String, String)] = [
                ("hosts:\n  a:\n    ssh: pc1\n    adress: x\n", "\(file):4: hosts.a.adress: unknown key \"adress\""),
                ("groups:\n  a: [b]\n  b: [c, a]\n", "\(file):3: groups.b: the group contains itself: a -> b -> a"),
                (
                    "groups:\n  lab: [pc1, \"-oProxyCommand=x\"]\n",
                    "\(file):2: groups.lab: member \"-oProxyCommand=x\": a host cannot start with \"-\""
                ),
                ("groups:\n  lab: pc1\n", "\(file):2: groups.lab: expected a list of hosts and groups, got a string"),
                (
                    "hosts:\n  pc1: pc1:99999\n",
                    "\(file):2: hosts.pc1: host \"pc1:99999\": the port \"99999\" is not a number from 1 to 65535"
                ),
                ("hosts:\n  a: pc1\ngroups:\n  a: [pc2]\n", "\(file):4: groups.a: \"a\" is already the name of a host"),
                ("hostz: {}\n", "\(file):1: hostz: unknown key \"hostz\""),
            ]
            for (text, message) in cases {
                try FileSystem.writeAtomically(file, text: text)
                let result = try await env.berthctl(["--hosts", "lab", "status"])
                #expect(result.status == 1 && result.stderr.hasPrefix("berthctl: " + message), "\(text)\n\(result)")
            }
            try FileSystem.writeAtomically(file, text: "groups:\n  lab: [pc1]\n  field: [rec1]\n")
            let unknown = try await env.berthctl(["--hosts", "labs", "status"])
            #expect(
                unknown.stderr == "berthctl: --hosts \"labs\": \(file) has no such group (groups: field, lab)\n",
                "\(unknown)")
            // -H values that could be read as ssh options, and a local --address with -H, are usage errors.
            let option = try await env.berthctl(["-H", "-oProxyCommand=touch /tmp/x", "status"])
            #expect(option.status == 64 && option.stderr.contains("a host cannot start with \"-\""), "\(option)")
            let address = try await env.berthctl(["-H", "pc1", "--address", env.bus.address, "status"])
            #expect(
                address.status == 64 && address.stderr.contains("with -H give the host's bus with --remote-address"),
                "\(address)")
        }
    }
}
