import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// Start, single instance, shutdown, reload and the service manager protocol, with real processes.
@Suite struct LifecycleTests {
    @Test func twoDaemonsSameRuntimeDirExactlyOneRuns() async throws {
        try await TestEnvironment.with { env in
            let first = try await env.startDaemon(waitForName: false)
            let second = try await env.startDaemon(waitForName: false)
            try await env.bus.waitForName("org.berth.Berth1", timeout: .seconds(20))
            let loser = try await waitForOneExit(first, second)
            #expect(loser.exitStatus == 1)
            #expect(loser.log.contains("berthd: berthd is already running (pid "), "\(loser.log)")
            let winner = loser === first ? second : first
            #expect(winner.isRunning)
        }
    }

    @Test func twoDaemonsDifferentRuntimeDirsTheBusNameDecides() async throws {
        try await TestEnvironment.with { env in
            let first = try await env.startDaemon()
            // Another state folder too: one shared state folder is refused earlier (StateLockTests).
            let second = try await env.startDaemon(
                arguments: ["--runtime-dir", env.root + "/run2", "--state-dir", env.root + "/state2"], waitForName: false)
            #expect(try await second.waitForExit() == 1)
            #expect(second.log.contains("the name org.berth.Berth1 is already owned"), "\(second.log)")
            #expect(first.isRunning)
        }
    }

    func waitForOneExit(_ a: DaemonProcess, _ b: DaemonProcess) async throws -> DaemonProcess {
        var loser: DaemonProcess?
        try await waitUntil("one of two daemons exits") {
            loser = !a.isRunning ? a : !b.isRunning ? b : nil
            return loser != nil
        }
        return loser!
    }

    @Test func killNineThenUpStartsANewDaemon() async throws {
        try await TestEnvironment.with { env in
            let old = try await env.startDaemon()
            old.signal(SIGKILL)
            _ = try await old.waitForExit()
            let up = try await env.berthctl(["up", "--address", env.bus.address], timeout: .seconds(40))
            #expect(up.status == 0 && up.stdout.contains("berthd started (pid "), "\(up)")
            let again = try await env.berthctl(["up", "--address", env.bus.address])
            #expect(again.status == 0 && again.stdout.contains("berthd is already running"), "\(again)")
            let down = try await env.berthctl(["down", "--address", env.bus.address], timeout: .seconds(70))
            #expect(down.status == 0 && down.stdout.contains("stopped"), "\(down)")
        }
    }

    @Test func upForceStopsAHungDaemonWithItsGroup() async throws {
        try await TestEnvironment.with { env in
            let up = try await env.berthctl(["up", "--address", env.bus.address], timeout: .seconds(40))
            #expect(up.status == 0, "\(up)")
            let pid = try #require(Int32(up.stdout.split(separator: "(pid ").last?.split(separator: ")").first ?? ""))
            kill(pid, SIGSTOP)  // holds the lock and the name, answers nothing
            defer { kill(pid, SIGKILL) }
            let refused = try await env.berthctl(["up", "--address", env.bus.address], timeout: .seconds(40))
            #expect(refused.status != 0 && refused.stderr.contains("does not answer"), "\(refused)")
            let forced = try await env.berthctl(["up", "--force", "--address", env.bus.address], timeout: .seconds(60))
            #expect(forced.status == 0 && forced.stdout.contains("berthd started"), "\(forced)")
            #expect(kill(pid, 0) != 0 || ((try? FileSystem.readKernelText("/proc/\(pid)/stat")) ?? "").contains(") Z"))
            _ = try await env.berthctl(["down", "--address", env.bus.address], timeout: .seconds(70))
        }
    }

    @Test func shutdownCancelsJobsAndExitsZero() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libTestFixtureGood.so"])
            let daemon = try await env.startDaemon()
            let client = try env.connect()
            let removed = try await client.signals(interface: "org.berth.Berth1.Manager", member: "JobRemoved")
            let states = try await client.signals(path: "/org/berth/Berth1", member: "PropertiesChanged")
            let job = try await client.call("org.berth.Berth1", "/org/berth/Berth1/fixture", "org.berth.Berth1.Fixture",
                "Sleep", [.double(600)])
            _ = try await client.call("org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager", "Shutdown")
            var iterator = removed.makeAsyncIterator()
            let signal = try #require(await iterator.next())
            #expect(signal.arguments == [job[0], job[1], .string("fixture"), .string("canceled")])
            var sawStopping = false
            for await change in states where change.arguments[1].stringKeyed?["State"] == .variant(.string("stopping")) {
                sawStopping = true
                break
            }
            #expect(sawStopping)
            #expect(try await daemon.waitForExit() == 0)
        }
    }

    @Test func sigtermExitsZeroAndReleasesTheName() async throws {
        try await TestEnvironment.with { env in
            let daemon = try await env.startDaemon()
            daemon.signal(SIGTERM)
            #expect(try await daemon.waitForExit() == 0)
            let owner = try await env.busctl(["status", "org.berth.Berth1"])
            #expect(owner.status != 0)
        }
    }

    /// The bus going away ends berthd with status 1, its plugins stopped, also when SIGTERM arrives at the same
    /// moment (shutdown's bus calls fail at once instead of waiting on a bus thread that has ended).
    @Test(.timeLimit(.minutes(1)), arguments: [false, true])
    func lostBusEndsTheDaemon(alsoSigterm: Bool) async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libTestFixtureGood.so"])
            let daemon = try await env.startDaemon()
            env.bus.stop()
            if alsoSigterm { daemon.signal(SIGTERM) }
            let code = try await daemon.waitForExit(timeout: .seconds(10))
            if alsoSigterm {
                #expect(code == 0 || code == 1, "\(daemon.log)")
            } else {
                #expect(code == 1, "\(daemon.log)")
                #expect(daemon.log.contains("lost the connection"), "\(daemon.log)")
            }
            #expect(daemon.log.contains("stopped"), "\(daemon.log)")
        }
    }

    @Test func reloadAppliesOnlyWhatChangedAndRefusesBadConfig() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libTestFixtureGood.so"])
            try env.writeConfig("fixture:\n  greeting: one\n")
            let daemon = try await env.startDaemon()
            func property(_ name: String) async throws -> String {
                try await env.busctl(["get-property", "org.berth.Berth1", "/org/berth/Berth1/fixture",
                    "org.berth.Berth1.Fixture", name]).stdout
            }
            func reload() async throws -> CommandResult {
                try await env.busctl(["call", "org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager", "Reload"])
            }
            // Only the log level changes: the plugin is not reloaded.
            try env.writeConfig("log_level: debug\nfixture:\n  greeting: one\n")
            #expect(try await reload().status == 0)
            #expect(try await property("ReloadCount") == "u 0\n")
            // Its section changes: reloaded once.
            try env.writeConfig("log_level: debug\nfixture:\n  greeting: two\n")
            #expect(try await reload().status == 0)
            #expect(try await property("ReloadCount") == "u 1\n")
            #expect(try await property("Greeting") == "s \"two\"\n")
            // A bad config is refused with InvalidConfig and nothing changes.
            try env.writeConfig("log_level: debug\nfixture:\n  greeting: three\n  colour: red\n")
            let bad = try await reload()
            #expect(bad.status != 0 && bad.stderr.contains("\(env.configFile):4: fixture.colour: unknown key"), "\(bad)")
            #expect(try await property("Greeting") == "s \"two\"\n")
            // SIGHUP reloads too.
            try env.writeConfig("fixture:\n  greeting: four\n")
            daemon.signal(SIGHUP)
            try await waitUntil("SIGHUP applied the new greeting") { try await property("Greeting") == "s \"four\"\n" }
            #expect(try await property("ReloadCount") == "u 2\n")
        }
    }

    @Test func speaksTheServiceManagerProtocol() async throws {
        try await TestEnvironment.with { env in
            let socket = env.root + "/notify.sock"
            let listener = try NotifyListener(path: socket)
            let daemon = try await env.startDaemon(environment: ["NOTIFY_SOCKET": socket, "WATCHDOG_USEC": "200000"])
            try await waitUntil("READY=1 and two watchdog pings arrive") {
                let all = listener.messages.joined(separator: "\n")
                return all.contains("READY=1") && all.components(separatedBy: "WATCHDOG=1").count >= 3
            }
            #expect(listener.messages.joined().contains("STATUS=running"))
            daemon.signal(SIGTERM)
            _ = try await daemon.waitForExit()
            #expect(listener.messages.joined(separator: "\n").contains("STOPPING=1"))
        }
    }

    @Test func journalStreamGetsSyslogPriorities() async throws {
        try await TestEnvironment.with { env in
            let daemon = try await env.startDaemon(environment: ["JOURNAL_STREAM": "8:12345"])
            daemon.signal(SIGTERM)
            _ = try await daemon.waitForExit()
            let lines = daemon.log.split(separator: "\n")
            #expect(!lines.isEmpty && lines.allSatisfy { $0.hasPrefix("<") && $0.dropFirst(2).hasPrefix(">") }, "\(daemon.log)")
            #expect(lines.contains { $0.hasPrefix("<6>berthd: berthd \(BerthVersion.string) running") })
        }
    }
}

/// A datagram socket standing in for systemd's notify socket; collects what berthd sends.
final class NotifyListener: @unchecked Sendable {
    private let fd: Int32
    private let lock = NSLock()
    private var received: [String] = []

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (i, byte) in path.utf8.enumerated() where i < buffer.count - 1 { buffer[i] = byte }
        }
        let r = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard r == 0 else { throw TestFailure("bind \(path) failed") }
        Thread.detachNewThread { [self] in
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = recv(fd, &buffer, buffer.count, 0)
                if n <= 0 { return }
                let text = String(decoding: buffer[0..<n], as: UTF8.self)
                lock.withLock { received.append(text) }
            }
        }
    }

    var messages: [String] { lock.withLock { received } }
}

/// Hosts without a session bus: `berthctl up` starts a private one in the runtime folder and every later call
/// finds it there.
@Suite struct PrivateSessionBusTests {
    @Test func upStartsAPrivateBusWhenThereIsNone() async throws {
        try await TestEnvironment.with { env in
            // No DBUS_SESSION_BUS_ADDRESS and no $XDG_RUNTIME_DIR/bus: no session bus at all.
            let noBus = ["DBUS_SESSION_BUS_ADDRESS": "", "XDG_RUNTIME_DIR": env.root + "/userrun"]
            try FileSystem.makeDirectories(env.root + "/userrun", mode: 0o700)
            let socket = env.root + "/userrun/berth/bus"
            defer {
                if let pid = (try? FileSystem.readText(socket + ".pid")).flatMap({ Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) {
                    kill(pid, SIGTERM)
                }
            }
            let before = try await env.run([TestEnvironment.buildDir + "/berthctl", "status"], environment: noBus)
            #expect(before.status == 1 && before.stderr.contains("no session bus found"), "\(before)")
            let up = try await env.run([TestEnvironment.buildDir + "/berthctl", "up"], environment: noBus, timeout: .seconds(40))
            #expect(up.status == 0, "\(up)")
            #expect(up.stdout.contains("started a private D-Bus session bus at \(socket)"), "\(up)")
            // Other tools find it through the line up prints.
            #expect(up.stdout.contains("export DBUS_SESSION_BUS_ADDRESS=unix:path=\(socket)\n"), "\(up)")
            let busctl = try await env.run(
                ["busctl", "--user", "call", "org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager", "Ping"],
                environment: noBus.merging(["DBUS_SESSION_BUS_ADDRESS": "unix:path=" + socket]) { $1 })
            #expect(busctl.status == 0, "\(busctl)")
            let busPID = Int32(((try? FileSystem.readText(socket + ".pid")) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            #expect(busPID > 0 && kill(busPID, 0) == 0)
            let status = try await env.run([TestEnvironment.buildDir + "/berthctl", "status"], environment: noBus)
            #expect(status.status == 0 && status.stdout.contains("running on the bus at unix:path=\(socket)"), "\(status)")
            let down = try await env.run([TestEnvironment.buildDir + "/berthctl", "down"], environment: noBus, timeout: .seconds(70))
            #expect(down.status == 0, "\(down)")
            // The bus that up started goes with the daemon.
            #expect(down.stdout.contains("stopped the private D-Bus session bus at \(socket)"), "\(down)")
            try await waitUntil("the private dbus-daemon exits") {
                // Gone, or a zombie of this test process (a subreaper in the BerthKit tests).
                let stat = (try? FileSystem.readKernelText("/proc/\(busPID)/stat")) ?? ""
                return stat.isEmpty || stat.contains(") Z ")
            }
            #expect(!FileSystem.exists(socket))
        }
    }
}
