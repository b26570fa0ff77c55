import BerthKit
import Foundation

/// A real OpenSSH server for one test: `/usr/sbin/sshd -D` on 127.0.0.1 at a free port, with a host key, a user
/// key and authorized_keys generated in a temp folder, and an ssh client config (`configFile`, for `ssh -F`) that
/// trusts exactly that host key and uses exactly that user key. Nothing of ~/.ssh is read or written.
public final class SSHServer: @unchecked Sendable {
    public let dir: String
    public let port: UInt16
    /// The client config: pass as `ssh -F`, `berthctl --ssh-config` or `BERTH_SSH_CONFIG`.
    public let configFile: String
    private let process: ChildProcess

    /// `127.0.0.1:PORT`, what `berthctl -H` takes.
    public var destination: String { "127.0.0.1:\(port)" }

    init(dir: String, port: UInt16, configFile: String, process: ChildProcess) {
        self.dir = dir
        self.port = port
        self.configFile = configFile
        self.process = process
    }

    /// `environment`: variables every session gets (sshd's `SetEnv`), e.g. a PATH with the built berthctl.
    public static func start(in dir: String, environment: [String: String] = [:]) async throws -> SSHServer {
        let sshd = "/usr/sbin/sshd"
        guard FileManager.default.isExecutableFile(atPath: sshd) else {
            throw TestFailure("\(sshd) is not installed (Debian openssh-server; scripts/install-deps)")
        }
        try FileSystem.makeDirectories(dir, mode: 0o700)
        for key in ["host_key", "user_key"] {
            let keygen = try await Command.run([
                "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "berth-test", "-f", dir + "/" + key,
            ])
            guard keygen.status == 0 else { throw TestFailure("ssh-keygen: \(keygen)") }
        }
        try FileManager.default.copyItem(atPath: dir + "/user_key.pub", toPath: dir + "/authorized_keys")
        // sshd as root checks for its privilege separation folder (the Debian unit makes it at boot).
        if getuid() == 0 && !FileSystem.exists("/run/sshd") { try FileSystem.makeDirectories("/run/sshd", mode: 0o755) }
        let hostKey = try (FileSystem.readText(dir + "/host_key.pub") ?? "").trimmingCharacters(
            in: .whitespacesAndNewlines)
        var lastError = ""
        for _ in 0..<5 {
            let port = UInt16(freePort())
            try FileSystem.writeAtomically(
                dir + "/sshd_config",
                text: """
                    Port \(port)
                    ListenAddress 127.0.0.1
                    HostKey \(dir)/host_key
                    AuthorizedKeysFile \(dir)/authorized_keys
                    PidFile none
                    UsePAM no
                    StrictModes no
                    PasswordAuthentication no
                    KbdInteractiveAuthentication no
                    PermitRootLogin prohibit-password
                    MaxStartups 100
                    LogLevel ERROR
                    \(environment.isEmpty ? "" : "SetEnv " + environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))

                    """)
            let config = dir + "/ssh_config"
            try FileSystem.writeAtomically(dir + "/known_hosts", text: "[127.0.0.1]:\(port) \(hostKey)\n")
            try FileSystem.writeAtomically(
                config,
                text: """
                    Host *
                      IdentityFile \(dir)/user_key
                      IdentitiesOnly yes
                      UserKnownHostsFile \(dir)/known_hosts
                      GlobalKnownHostsFile /dev/null
                      StrictHostKeyChecking yes
                      BatchMode yes
                      LogLevel ERROR

                    """)
            let log = dir + "/sshd.log"
            let process = try ChildProcess.spawn(
                [sshd, "-D", "-e", "-f", dir + "/sshd_config"], stdout: log, stderr: log)
            let server = SSHServer(dir: dir, port: port, configFile: config, process: process)
            do {
                try await waitUntil("sshd listens on 127.0.0.1:\(port)", timeout: .seconds(10)) {
                    if !process.isRunning { throw TestFailure("sshd exited: \((try? FileSystem.readText(log)) ?? "")") }
                    let probe = try await Command.run(["ssh", "-F", config, "-p", String(port), "127.0.0.1", "true"])
                    return probe.status == 0
                }
                return server
            } catch {
                lastError = "\(error)"
                server.stop()
            }
        }
        throw TestFailure("sshd did not start: \(lastError)")
    }

    public func stop() { process.terminate() }

}

/// A host that is up but does not answer: a TCP socket on 127.0.0.1 that listens and never accepts, so ssh
/// connects and then waits for a banner that never comes.
public final class SilentHost: @unchecked Sendable {
    public let port: UInt16
    private let fd: Int32

    public init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard Loopback.bind(fd) == 0, listen(fd, 16) == 0, let port = Loopback.port(of: fd) else {
            close(fd)
            throw TestFailure("cannot listen on 127.0.0.1")
        }
        self.fd = fd
        self.port = port
    }

    public func stop() { close(fd) }
}
