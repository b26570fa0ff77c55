import ArgumentParser
import BerthKit
import Glibc

struct UpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Start berthd if nothing answers on the bus (and a private bus when there is none).",
        discussion: """
            Idempotent: when berthd already answers, says so and exits 0. With --force, a berthd that holds the lock \
            but does not answer within a few seconds is stopped with its whole process group first.
            """)
    @OptionGroup var bus: BusOptions
    @Flag(name: .long, help: "Stop a daemon that holds the lock but does not answer, then start a new one.")
    var force = false
    @Option(name: .long, help: "The berthd to start (default: the one beside berthctl, else berthd from PATH).")
    var berthd: String?
    @Option(name: .customLong("daemon-arg"), help: "An extra argument for berthd (repeatable).")
    var daemonArg: [String] = []

    func run() async throws {
        try await CLI.run(bus) {
            var target = BusTarget.resolve(bus)
            if case .none(let socket) = target {
                try startPrivateBus(socket: socket)
                target = .address("unix:path=" + socket)
                print("started a private D-Bus session bus at \(socket)")
            }
            if target.isPrivateBus {
                // busctl, gdbus and other clients find this bus only through the variable.
                print("to reach it from other tools: export DBUS_SESSION_BUS_ADDRESS=unix:path=\(BusTarget.privateSocket)")
            }
            let connection = try target.connect()
            if let pid = try await DaemonProbe.ping(connection, timeout: .seconds(2)) {
                print("berthd is already running (pid \(pid)) on \(target.description)")
                return
            }
            let lockPath = target.lockFile
            if let holder = DaemonProbe.lockHolder(lockPath) {
                guard force else {
                    throw CLIError(
                        "berthd (pid \(holder)) holds \(lockPath) but does not answer on \(target.description): stop it, or run `berthctl up --force`")
                }
                print("berthd (pid \(holder)) holds the lock but does not answer: stopping it and its process group")
                try await DaemonProbe.stopGroup(pid: holder, lockPath: lockPath)
            }
            let pid = try spawnDaemon(target)
            let deadline = ContinuousClock.now + .seconds(15)
            while ContinuousClock.now < deadline {
                if let running = try await DaemonProbe.ping(connection, timeout: .milliseconds(500)) {
                    print("berthd started (pid \(running)) on \(target.description)")
                    return
                }
                if !DaemonProbe.isAlive(pid) {
                    throw CLIError("berthd (pid \(pid)) exited at start; see \(logFile)")
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            throw CLIError("berthd (pid \(pid)) did not take org.berth.Berth1 within 15 s; see \(logFile)")
        }
    }

    private var logFile: String { BusTarget.runtimeDir + "/berthd.log" }

    private func daemonPath() throws -> String {
        if let berthd {
            guard FileSystem.isExecutableFile(berthd) else { throw CLIError("\"\(berthd)\" is not an executable file") }
            return berthd
        }
        if let exe = FileSystem.executablePath() {
            let beside = FileSystem.directoryName(exe) + "/berthd"
            if FileSystem.isExecutableFile(beside) { return beside }
        }
        guard let found = DetachedProcess.findExecutable("berthd") else {
            throw CLIError("cannot find berthd beside berthctl or in PATH")
        }
        return found
    }

    private func spawnDaemon(_ target: BusTarget) throws -> pid_t {
        var argv = [try daemonPath()]
        switch target {
        case .address(let address): argv += ["--address", address]
        case .system: argv.append("--system")
        case .session, .none: break
        case .remote: throw CLIError("berthd starts on its own host: `berthctl -H HOST up` runs `berthctl up` there over ssh")
        }
        if BusTarget.env("XDG_RUNTIME_DIR") == nil, !target.isSystem { argv += ["--runtime-dir", BusTarget.runtimeDir] }
        argv += daemonArg
        try FileSystem.makeDirectories(BusTarget.runtimeDir, mode: 0o700)
        return try DetachedProcess.spawn(argv, logPath: logFile)
    }

    private func startPrivateBus(socket: String) throws {
        guard let daemon = DetachedProcess.findExecutable("dbus-daemon") else {
            throw CLIError("no session bus and no dbus-daemon to start one: install the dbus package")
        }
        try FileSystem.makeDirectories(FileSystem.directoryName(socket), mode: 0o700)
        let pid = try DetachedProcess.spawn(
            [daemon, "--session", "--nofork", "--nopidfile", "--address=unix:path=" + socket],
            logPath: BusTarget.runtimeDir + "/dbus.log")
        try FileSystem.writeAtomically(socket + ".pid", text: "\(pid)\n")
        let deadline = ContinuousClock.now + .seconds(5)
        while !FileSystem.exists(socket) {
            guard ContinuousClock.now < deadline else { throw CLIError("dbus-daemon did not create \(socket) within 5 s") }
            usleep(10_000)
        }
    }
}

extension BusTarget {
    var isSystem: Bool { if case .system = self { true } else { false } }
    /// The private bus `berthctl up` started (no session bus on this host).
    var isPrivateBus: Bool { if case .address(let a) = self { a == "unix:path=" + BusTarget.privateSocket } else { false } }
}

struct DownCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "down", abstract: "Stop berthd (Shutdown) and wait until it is gone.")
    @OptionGroup var bus: BusOptions

    func run() async throws {
        try await CLI.run(bus) {
            let target = BusTarget.resolve(bus)
            let connection = try target.connect()
            guard let answer = try await DaemonProbe.ping(connection, timeout: .seconds(5)) else {
                print("berthd is not running on \(target.description)")
                return
            }
            let pid = pid_t(answer)
            _ = try await connection.manager("Shutdown")
            let deadline = ContinuousClock.now + .seconds(60)
            while DaemonProbe.isAlive(pid) {
                guard ContinuousClock.now < deadline else { throw CLIError("berthd (pid \(pid)) is still running after 60 s") }
                try await Task.sleep(for: .milliseconds(20))
            }
            print("berthd (pid \(pid)) stopped")
            if target.isPrivateBus { try await stopPrivateBus() }
        }
    }

    /// Stops the dbus-daemon `berthctl up` started (its pid is beside the socket), once berthd is gone.
    private func stopPrivateBus() async throws {
        let socket = BusTarget.privateSocket
        guard let text = try? FileSystem.readText(socket + ".pid"),
            let pid = pid_t(text.split(separator: "\n").first ?? ""), pid > 1, DaemonProbe.isAlive(pid)
        else { return }
        kill(pid, SIGTERM)
        let deadline = ContinuousClock.now + .seconds(5)
        while DaemonProbe.isAlive(pid) && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        if DaemonProbe.isAlive(pid) { kill(pid, SIGKILL) }
        unlink(socket)
        unlink(socket + ".pid")
        print("stopped the private D-Bus session bus at \(socket) (pid \(pid))")
    }
}

struct ReloadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload", abstract: "Re-read the configuration and apply what changed (as SIGHUP does).")
    @OptionGroup var bus: BusOptions

    func run() async throws {
        try await CLI.run(bus) {
            let target = BusTarget.resolve(bus)
            _ = try await target.connect().manager("Reload")
            print("berthd reloaded its configuration on \(target.description)")
        }
    }
}

/// Asking whether a daemon answers, who holds the lock, and stopping a hung one.
enum DaemonProbe {
    /// The daemon's pid when it answers Ping within `timeout`; nil when nobody owns the name.
    static func ping(_ connection: BusConnection, timeout: Duration) async throws -> UInt32? {
        do {
            _ = try await connection.manager("Ping", timeout: timeout)
            return try await connection.berthProperty(Berth.root, Berth.manager, "DaemonPID").uint32
        } catch let error as DBusError {
            switch error.name {
            case "org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner",
                "org.freedesktop.DBus.Error.NoReply", "org.freedesktop.DBus.Error.Timeout":
                return nil
            default: throw error
            }
        }
    }

    /// The pid written in the lock file when some process holds the lock; nil when it is free.
    static func lockHolder(_ path: String) -> pid_t? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        if flock(fd, LOCK_SH | LOCK_NB) == 0 {
            flock(fd, LOCK_UN)
            return nil
        }
        let text = (try? FileSystem.readText(path)) ?? ""
        return pid_t(text.split(separator: "\n").first ?? "") ?? -1
    }

    static func isAlive(_ pid: pid_t) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        // A zombie counts as gone.
        let stat = (try? FileSystem.readKernelText("/proc/\(pid)/stat")) ?? ""
        guard let close = stat.lastIndex(of: ")") else { return false }
        return !stat[close...].hasPrefix(") Z")
    }

    /// SIGTERM to the daemon's process group, SIGKILL after 5 s, then waits for the lock to be free.
    static func stopGroup(pid: pid_t, lockPath: String) async throws {
        guard pid > 1 else { throw CLIError("the lock file \(lockPath) names no valid pid") }
        let group = getpgid(pid)
        let target = group == pid ? -pid : pid
        kill(target, SIGTERM)
        let soft = ContinuousClock.now + .seconds(5)
        while isAlive(pid) && ContinuousClock.now < soft { try await Task.sleep(for: .milliseconds(20)) }
        if isAlive(pid) || (group == pid && kill(-pid, 0) == 0) { kill(target, SIGKILL) }
        let hard = ContinuousClock.now + .seconds(5)
        while lockHolder(lockPath) != nil {
            guard ContinuousClock.now < hard else { throw CLIError("pid \(pid) still holds \(lockPath) after SIGKILL") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}
