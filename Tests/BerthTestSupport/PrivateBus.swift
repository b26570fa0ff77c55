import BerthKit
import Foundation

/// A private dbus-daemon with its socket in a temp folder.
public final class PrivateBus: @unchecked Sendable {
    public let address: String
    public let socket: String
    private let process: ChildProcess

    init(address: String, socket: String, process: ChildProcess) {
        self.address = address
        self.socket = socket
        self.process = process
    }

    /// Writes a session-bus config (everyone may own and talk; services from `servicedirs`) and starts it.
    public static func start(in dir: String, serviceDirs: [String] = []) async throws -> PrivateBus {
        let socket = dir + "/bus"
        let config = """
            <!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
              "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
            <busconfig>
              <type>session</type>
              <listen>unix:path=\(socket)</listen>
            \(serviceDirs.map { "  <servicedir>\($0)</servicedir>" }.joined(separator: "\n"))
              <policy context="default">
                <allow send_destination="*" eavesdrop="true"/>
                <allow eavesdrop="true"/>
                <allow own="*"/>
              </policy>
            </busconfig>
            """
        try FileSystem.writeAtomically(dir + "/bus.conf", text: config)
        let process = try ChildProcess.spawn(
            ["dbus-daemon", "--config-file=\(dir)/bus.conf", "--nofork", "--nopidfile"], stdout: dir + "/dbus.log",
            stderr: dir + "/dbus.log")
        let bus = PrivateBus(address: "unix:path=" + socket, socket: socket, process: process)
        // The socket file appears at bind(), before listen(): wait until a connection is accepted.
        try await waitUntil("dbus-daemon listens on \(socket)", timeout: .seconds(30)) {
            FileManager.default.fileExists(atPath: socket) && (try? BusConnection(.address(bus.address), description: "probe"))
                .map { connection in
                    connection.close()
                    return true
                } ?? false
        }
        return bus
    }

    /// Waits until `name` has an owner (fails early when `daemon` exits first).
    public func waitForName(_ name: String, timeout: Duration, daemon: DaemonProcess? = nil) async throws {
        let connection = try BusConnection(.address(address), description: "test-wait")
        defer { connection.close() }
        try await waitUntil("\(name) is owned on the private bus", timeout: timeout) {
            if let daemon, !daemon.isRunning {
                throw TestFailure("berthd exited with \(daemon.exitStatus) before owning \(name):\n\(daemon.log)")
            }
            let reply = try? await connection.call(
                "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameHasOwner", [.string(name)])
            return reply?.first == .bool(true)
        }
    }

    public func stop() { process.terminate() }
}

/// A berthd started by a test, its output in a log file.
public final class DaemonProcess: Sendable {
    public let child: ChildProcess
    public let logPath: String

    init(child: ChildProcess, logPath: String) {
        self.child = child
        self.logPath = logPath
    }

    static func start(path: String, arguments: [String], environment: [String: String], logPath: String) throws
        -> DaemonProcess
    {
        let child = try ChildProcess.spawn([path] + arguments, environment: environment, stdout: logPath, stderr: logPath)
        return DaemonProcess(child: child, logPath: logPath)
    }

    public var pid: Int32 { child.pid }
    public var isRunning: Bool { child.isRunning }
    public var exitStatus: Int32 { child.exitStatus ?? -1 }
    public var log: String { (try? FileSystem.readText(logPath)) ?? "" }

    public func signal(_ signal: Int32) { child.signal(signal) }

    /// Waits for the process to exit (up to `timeout`) and returns its status.
    public func waitForExit(timeout: Duration = .seconds(20)) async throws -> Int32 {
        try await child.wait(timeout: timeout)
    }

    func kill() { child.terminate() }
}
