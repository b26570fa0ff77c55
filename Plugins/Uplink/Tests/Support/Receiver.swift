import BerthKit
import BerthTestSupport
import Foundation

/// A real HTTP receiver: python3's http.server on 127.0.0.1 at a free port, appending each POST body (one JSON
/// line) and its headers to a file. While `fail` exists beside it, it answers 503 and keeps nothing.
final class Receiver: @unchecked Sendable {
    let directory: String
    let port: Int
    let process: ChildProcess

    init(in root: String) async throws {
        directory = root + "/receiver"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        port = freePort()
        let script = directory + "/receiver.py"
        try """
        import http.server, json, os, sys
        directory, port = sys.argv[1], int(sys.argv[2])
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if os.path.exists(os.path.join(directory, "fail")):
                    self.send_response(503); self.end_headers(); return
                with open(os.path.join(directory, "received"), "a") as f:
                    f.write(json.dumps({"headers": dict(self.headers), "body": body.decode()}) + "\\n")
                self.send_response(204); self.end_headers()
            def log_message(self, *args): pass
        http.server.HTTPServer.protocol_version = "HTTP/1.1"
        http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
        """.write(toFile: script, atomically: true, encoding: .utf8)
        process = try ChildProcess.spawn(
            ["python3", script, directory, String(port)], stdout: directory + "/log", stderr: directory + "/log")
        try await waitUntil("the receiver listens on \(port)") { [port] in canConnect(port) }
    }

    deinit { process.terminate() }

    func failing(_ on: Bool) {
        if on {
            _ = FileManager.default.createFile(atPath: directory + "/fail", contents: nil)
        } else {
            try? FileManager.default.removeItem(atPath: directory + "/fail")
        }
    }

    /// (headers, parsed body) of each POST kept, in order.
    var received: [(headers: [String: String], body: [String: Any])] {
        let text = (try? String(contentsOfFile: directory + "/received", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            guard let outer = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
                let body = outer["body"] as? String,
                let parsed = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any]
            else { return nil }
            return ((outer["headers"] as? [String: String]) ?? [:], parsed)
        }
    }
}
