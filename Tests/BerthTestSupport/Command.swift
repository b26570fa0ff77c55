import BerthKit
import Foundation

/// The result of running a program to completion.
public struct CommandResult: Sendable, CustomStringConvertible {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    public var description: String { "exit \(status)\nstdout: \(stdout)\nstderr: \(stderr)" }
}

/// Runs real programs (busctl, gdbus, dbus-send, berthctl, ...) for tests, off the cooperative pool.
public enum Command {
    /// Runs `argv` with `environment` added to (or replacing, with `clean`) this process's environment.
    public static func run(
        _ argv: [String], environment: [String: String] = [:], timeout: Duration = .seconds(30), input: String? = nil
    ) async throws -> CommandResult {
        var template = Array("/tmp/berth-cmd-XXXXXX".utf8CString)
        guard mkdtemp(&template) != nil else { throw TestFailure("mkdtemp failed") }
        let dir = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let stdin = dir + "/stdin"
        try FileSystem.writeAtomically(stdin, text: input ?? "")
        let child = try ChildProcess.spawn(
            argv, environment: environment, stdin: stdin, stdout: dir + "/stdout", stderr: dir + "/stderr")
        let status: Int32
        do {
            status = try await child.wait(timeout: timeout)
        } catch {
            child.terminate()
            throw TestFailure("\(argv.joined(separator: " ")) did not finish within \(timeout)")
        }
        return CommandResult(
            status: status, stdout: (try? FileSystem.readText(dir + "/stdout")) ?? "",
            stderr: (try? FileSystem.readText(dir + "/stderr")) ?? "")
    }

    /// A program's path: as given when it has a slash, else looked up in PATH.
    public static func resolve(_ name: String) throws -> String {
        if name.contains("/") { return name }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw TestFailure("\(name) is not installed (not in PATH)")
    }
}

public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Polls `condition` until it holds or `timeout` passes (for state another process changes).
public func waitUntil(
    _ what: String, timeout: Duration = .seconds(10), _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    throw TestFailure("timed out after \(timeout) waiting until \(what)")
}

/// The name of the thread running the caller (as `ps -L` shows it).
public func currentThreadName() -> String {
    let comm = (try? FileSystem.readKernelText("/proc/thread-self/comm")) ?? nil
    return comm?.trimmingCharacters(in: .newlines) ?? ""
}
