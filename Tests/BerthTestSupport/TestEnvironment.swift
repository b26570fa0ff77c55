import BerthKit
import Foundation
import Testing

/// A private world for one test: a temp folder (never ~), XDG folders inside it, a private dbus-daemon
/// (never the host's bus) and the berthd processes the test starts. `TestEnvironment.with` tears it all down on
/// every path.
public final class TestEnvironment: @unchecked Sendable {
    public let root: String
    public let configHome: String
    public let stateHome: String
    public let runtimeDir: String
    public let pluginDir: String
    public let bus: PrivateBus
    private var daemons: [DaemonProcess] = []
    private let lock = NSLock()

    /// The folder holding the built products (berthd, berthctl, lib*.so): beside the test binary.
    public static var buildDir: String {
        if let dir = ProcessInfo.processInfo.environment["BERTH_BUILD_DIR"] { return dir }
        return FileSystem.directoryName(FileSystem.executablePath() ?? "")
    }

    /// Runs `body` in a new world, torn down on every path. At most `TestSlots`' limit of worlds run at once.
    ///
    /// A world has a time limit (`timeLimit`, 4 minutes unless given): when it passes, an issue is recorded and the
    /// test's task is cancelled, which ends its waits (a `Task.sleep`, a `waitUntil`, a signal stream's `next()`), so
    /// a wait for something that never comes fails the test instead of holding the whole run.
    public static func with<T>(
        timeLimit: Duration = .seconds(240), sourceLocation: SourceLocation = #_sourceLocation,
        _ body: (TestEnvironment) async throws -> T
    ) async throws -> T {
        try await TestSlots.withSlot {
            let env = try await TestEnvironment()
            let watchdog = TaskWatchdog.arm(after: timeLimit)
            defer {
                watchdog.cancel()
                if watchdog.fired {
                    Issue.record(
                        "the test's world passed its time limit of \(timeLimit): its task was cancelled",
                        sourceLocation: sourceLocation)
                }
            }
            do {
                let result = try await body(env)
                await env.tearDown()
                return result
            } catch {
                await env.tearDown()
                throw error
            }
        }
    }

    init() async throws {
        var template = Array("/tmp/berth-test-XXXXXX".utf8CString)
        guard mkdtemp(&template) != nil else { throw TestFailure("mkdtemp failed") }
        root = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        configHome = root + "/config"
        stateHome = root + "/state"
        runtimeDir = root + "/run"
        pluginDir = root + "/plugins"
        for dir in [configHome + "/berth", stateHome, runtimeDir, pluginDir] {
            try FileSystem.makeDirectories(dir, mode: 0o700)
        }
        bus = try await PrivateBus.start(in: root)
    }

    /// Environment variables that point every berth program at this test's world.
    public var environment: [String: String] {
        [
            "XDG_CONFIG_HOME": configHome, "XDG_STATE_HOME": stateHome, "XDG_RUNTIME_DIR": runtimeDir,
            "DBUS_SESSION_BUS_ADDRESS": bus.address, "HOME": root,
        ]
    }

    public var configFile: String { configHome + "/berth/berth.yaml" }

    public func writeConfig(_ text: String) throws {
        try FileSystem.writeAtomically(configFile, text: text)
    }

    /// Links built libraries (`libTestFixtureGood.so`, ...) into this test's plugin folder.
    public func installPlugins(_ names: [String]) throws {
        for name in names {
            let target = Self.buildDir + "/" + name
            guard FileManager.default.fileExists(atPath: target) else { throw TestFailure("\(target) is not built") }
            try FileManager.default.createSymbolicLink(atPath: pluginDir + "/" + name, withDestinationPath: target)
        }
    }

    /// Starts berthd on the private bus and waits until it owns org.berth.Berth1.
    @discardableResult
    public func startDaemon(arguments: [String] = [], environment extra: [String: String] = [:], waitForName: Bool = true)
        async throws -> DaemonProcess
    {
        let daemon = try DaemonProcess.start(
            path: Self.buildDir + "/berthd",
            arguments: ["--address", bus.address, "--plugin-dir", pluginDir] + arguments,
            environment: environment.merging(extra) { $1 }, logPath: root + "/berthd-\(daemonCount()).log")
        lock.withLock { daemons.append(daemon) }
        if waitForName { try await bus.waitForName("org.berth.Berth1", timeout: .seconds(20), daemon: daemon) }
        return daemon
    }

    private func daemonCount() -> Int { lock.withLock { daemons.count } }

    /// Runs a program with this world's environment.
    public func run(
        _ argv: [String], environment extra: [String: String] = [:], timeout: Duration = .seconds(30),
        input: String? = nil
    ) async throws -> CommandResult {
        try await Command.run(argv, environment: environment.merging(extra) { $1 }, timeout: timeout, input: input)
    }

    public func busctl(_ args: [String]) async throws -> CommandResult {
        try await run(["busctl", "--address=\(bus.address)"] + args)
    }

    public func gdbus(_ args: [String]) async throws -> CommandResult {
        try await run(["gdbus"] + args.flatMap { $0 == "@BUS" ? ["--address", bus.address] : [$0] })
    }

    public func berthctl(_ args: [String], timeout: Duration = .seconds(30)) async throws -> CommandResult {
        try await run([Self.buildDir + "/berthctl"] + args, timeout: timeout)
    }

    /// A client connection to the private bus (BerthKit's client side).
    public func connect() throws -> BusConnection { try BusConnection(.address(bus.address), description: "test") }

    func tearDown() async {
        for daemon in lock.withLock({ daemons }) { daemon.kill() }
        // Whatever the daemons started and that outlived them (a service's grandchildren after SIGKILL) goes too:
        // everything berth starts here inherits this world's environment.
        killProcesses(withEnvironment: "XDG_RUNTIME_DIR=" + runtimeDir)
        bus.stop()
        try? FileManager.default.removeItem(atPath: root)
    }
}
