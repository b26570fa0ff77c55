import BerthKit
import BerthTestSupport
import Foundation

/// What the instances tests share: a daemon with the plugin and quick health settings, a trivial HTTP app
/// (python3) that answers its version, job helpers, and a tiny HTTP client.
enum InstancesTest {
    static let path = "/org/berth/Berth1/instances"
    static let iface = "org.berth.Berth1.Instances"

    /// A port pool unlikely to collide with other tests running at the same time, below the ephemeral range
    /// (32768-60999) that the HTTP load's client connections use.
    static func portBase() -> Int { 20000 + Int.random(in: 0..<120) * 100 }

    static func config(_ env: TestEnvironment, reload: [String] = [], extra: String = "") -> String {
        let base = portBase()
        let reloadList = "[" + reload.map { "\"\($0)\"" }.joined(separator: ", ") + "]"
        return """
            instances:
              ports: \(base)-\(base + 99)
              stop_timeout: 2s
              health: { check: "http:/healthz", timeout: 15s, interval: 50ms, min_ready: 300ms }
              frontend:
                file: \(env.root)/frontend/{{app}}.conf
                reload: \(reloadList)
                drain: 300ms
            \(extra)
            """
    }

    @discardableResult
    static func start(_ env: TestEnvironment, config text: String? = nil) async throws -> DaemonProcess {
        try env.installPlugins(["libInstancesPlugin.so"])
        try env.writeConfig(text ?? config(env))
        return try await env.startDaemon()
    }

    /// A folder with an executable `server` answering `version` on / and /healthz (500 on /healthz if unhealthy).
    static func app(_ env: TestEnvironment, version: String, healthy: Bool = true) throws -> String {
        let dir = env.root + "/src-\(version)-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try writeServer(dir + "/server", version: version, healthy: healthy)
        return dir
    }

    static func writeServer(_ path: String, version: String, healthy: Bool = true) throws {
        // A trivial HTTP app that starts in tens of milliseconds: Debian's python3 without site (`-S`, and not a
        // pyenv shim), raw sockets instead of http.server (whose imports take a few hundred milliseconds), a
        // thread per connection.
        let script = """
            #!/usr/bin/python3 -S
            import os, socket, threading
            BODY = b"\(version)"
            HEALTHY = \(healthy ? "True" : "False")
            def handle(conn):
                with conn:
                    data = b""
                    while b"\\r\\n\\r\\n" not in data:
                        chunk = conn.recv(4096)
                        if not chunk:
                            return
                        data += chunk
                    parts = data.split(b" ", 2)
                    path = parts[1] if len(parts) > 2 else b"/"
                    ok = HEALTHY or path != b"/healthz"
                    status = b"200 OK" if ok else b"500 Internal Server Error"
                    conn.sendall(b"HTTP/1.0 " + status + b"\\r\\nContent-Length: " + str(len(BODY)).encode()
                                 + b"\\r\\nConnection: close\\r\\n\\r\\n" + BODY)
            server = socket.socket()
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind(("127.0.0.1", int(os.environ["PORT"])))
            server.listen(128)
            print("serving \(version) on", os.environ["PORT"], "config", os.environ.get("BERTH_APPCFG"), flush=True)
            while True:
                conn, _ = server.accept()
                threading.Thread(target=handle, args=(conn,), daemon=True).start()

            """
        try FileSystem.writeAtomically(path, text: script, mode: 0o755)
    }

    static func call(
        _ c: BusConnection, _ member: String, _ args: [DBusValue] = [], path: String = path,
        iface: String = iface
    ) async throws -> [DBusValue] {
        try await c.call("org.berth.Berth1", path, iface, member, args)
    }

    static func new(_ c: BusConnection, _ json: String) async throws -> String {
        try await call(c, "New", [.string(json)])[0].string!
    }

    struct JobOutcome {
        var result: String
        var logs: [String]
        var error: String
        var errorName: String
    }

    /// Calls a method that starts a job, waits for its JobRemoved, returns its result, Log lines and error.
    static func runJob(
        _ c: BusConnection, _ member: String, _ args: [DBusValue], path: String = path,
        iface: String = iface, onLog: (@Sendable (String) -> Void)? = nil, timeout: Duration = .seconds(60)
    ) async throws
        -> JobOutcome
    {
        let stream = try await c.signals(sender: "org.berth.Berth1")
        let reply = try await call(c, member, args, path: path, iface: iface)
        let job = reply[1].string!
        let outcome = try await withThrowingTaskGroup(of: JobOutcome?.self) { group in
            group.addTask {
                var logs: [String] = []
                var error = ("", "")
                for await s in stream {
                    if s.path == job && s.member == "Log" {
                        logs.append(s.arguments[0].string ?? "")
                        onLog?(logs.last!)
                    } else if s.path == job && s.member == "PropertiesChanged", s.arguments.count > 1,
                        let changed = s.arguments[1].stringKeyed
                    {
                        // The job's error arrives before its JobRemoved: read from the signal, not from the object,
                        // which a loaded run may reach only after its retention time.
                        error.0 = changed["ErrorMessage"]?.unwrapped.string ?? error.0
                        error.1 = changed["ErrorName"]?.unwrapped.string ?? error.1
                    } else if s.member == "JobRemoved" && s.arguments[1].string == job {
                        return JobOutcome(
                            result: s.arguments[3].string ?? "", logs: logs, error: error.0, errorName: error.1)
                    }
                }
                return nil
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            return first
        }
        guard let outcome else { throw TestFailure("job \(job) of \(member) did not end within \(timeout)") }
        return outcome
    }

    static func instancePath(_ id: String) -> String { BusPath.encode(path, id) }

    static func property(_ c: BusConnection, _ id: String, _ name: String) async throws -> DBusValue {
        try await c.getProperty("org.berth.Berth1", instancePath(id), "org.berth.Berth1.Instance", name)
    }

    static func list(_ c: BusConnection) async throws -> [[String]] {
        try await call(c, "List")[0].items!.map { $0.items!.map { $0.string ?? "" } }
    }

    /// One GET over a fresh connection (blocking; call it off the cooperative pool or for single requests).
    static func get(port: Int, path: String = "/") -> (status: Int, body: String)? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        guard Loopback.connect(fd, port: UInt16(port)) == 0 else { return nil }
        let request = Array("GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count
        else {
            return nil
        }
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            data += buffer[0..<n]
        }
        let text = String(decoding: data, as: UTF8.self)
        guard let head = text.split(separator: "\r\n", maxSplits: 1).first,
            let status = Int(head.split(separator: " ")[1])
        else { return nil }
        let body = text.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
        return (status, body)
    }

    static func isAlive(_ pid: Int32) -> Bool {
        guard pid > 0, let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else {
            return false
        }
        return !(stat.split(separator: ")").last?.trimmingCharacters(in: .whitespaces).hasPrefix("Z") ?? true)
    }
}
