import BerthKit
import BerthTestSupport
import Foundation
import Synchronization
import Testing

/// A private nginx in front of the `web` application: its own prefix, config and logs in the test's folder, on a
/// free loopback port; the front-end file starts pointing at port 1.
struct PrivateNginx {
    let port: Int
    let process: ChildProcess
    let args: [String]
    var reload: [String] { args + ["-s", "reload"] }

    static func start(_ env: TestEnvironment, workerConnections: Int = 64) async throws -> PrivateNginx {
        let prefix = env.root + "/nginx"
        try FileManager.default.createDirectory(atPath: prefix + "/tmp", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: env.root + "/frontend", withIntermediateDirectories: true)
        try FileSystem.writeAtomically(
            env.root + "/frontend/web.conf", text: "upstream berth_web { server 127.0.0.1:1; }\n")
        let port = freePort()
        let conf = prefix + "/nginx.conf"
        try FileSystem.writeAtomically(
            conf,
            text: """
                \(getuid() == 0 ? "user root;" : "")
                worker_processes 1;
                daemon off;
                pid \(prefix)/nginx.pid;
                error_log \(prefix)/error.log warn;
                events { worker_connections \(workerConnections); }
                http {
                    access_log off;
                    client_body_temp_path \(prefix)/tmp/body;
                    proxy_temp_path \(prefix)/tmp/proxy;
                    fastcgi_temp_path \(prefix)/tmp/fastcgi;
                    uwsgi_temp_path \(prefix)/tmp/uwsgi;
                    scgi_temp_path \(prefix)/tmp/scgi;
                    include \(env.root)/frontend/web.conf;
                    server {
                        listen 127.0.0.1:\(port);
                        location / { proxy_pass http://berth_web; }
                    }
                }

                """)
        let args = ["nginx", "-e", prefix + "/error.log", "-p", prefix, "-c", conf]
        let process = try ChildProcess.spawn(args, stdout: prefix + "/out.log", stderr: prefix + "/out.log")
        let nginx = PrivateNginx(port: port, process: process, args: args)
        do {
            try await waitUntil("nginx listens on \(port)") {
                if !process.isRunning {
                    throw TestFailure(
                        "nginx exited: \((try? String(contentsOfFile: prefix + "/out.log", encoding: .utf8)) ?? "")")
                }
                return InstancesTest.get(port: port) != nil
            }
        } catch {
            nginx.stop()
            throw error
        }
        return nginx
    }

    /// Waits until nginx answers `body` (a reload takes effect when its new workers are up).
    func waitServes(_ body: String) async throws {
        try await waitUntil("nginx on \(port) answers \(body)", timeout: .seconds(10)) {
            InstancesTest.get(port: port)?.body == body
        }
    }

    func stop() {
        process.signal(SIGTERM)
        for _ in 0..<400 where process.isRunning { usleep(5000) }
        process.terminate()
    }
}
