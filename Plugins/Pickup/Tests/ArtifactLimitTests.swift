import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// Every artifact read has a limit (`pickup: max_artifact_bytes`, 256 MiB by default) and reads regular files
/// only: a 1 TiB sparse file in a folder or given to DeployFile is a failed deployment naming its size and the
/// limit, never an allocation of its size (berthd aborted, and again at every start while the file was there);
/// `/proc/self/pagemap`, which says it is empty and never ends, is refused before a byte is read.
@Suite(.serialized) struct ArtifactLimitTests {
    /// A line of /proc/<pid>/status in KiB (VmHWM: the peak resident memory, VmRSS: the current one).
    static func statusKiB(_ pid: Int32, _ field: String) -> Int { procStatusKiB(pid, field) ?? -1 }

    /// A sparse file of `size` bytes: no disk used, nothing written.
    static func sparse(_ path: String, size: Int64) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0, ftruncate(fd, off_t(size)) == 0 else { throw TestFailure("cannot make \(path)") }
        close(fd)
    }

    static let terabyteTooLarge =
        "is 1099511627776 bytes (1 TiB), over the limit of 268435456 bytes (256 MiB) (pickup: max_artifact_bytes)"

    @Test func aSparseTerabyteInAFolderIsAFailedDeploymentAndBerthdStarts() async throws {
        try await TestEnvironment.with { env in
            let pickup = try await PickupHarness.start(env)
            let files = pickup.folder("files")
            try await pickup.stopDaemon()
            try Self.sparse(files + "/big.bin", size: 1 << 40)
            try Files.write(files + "/small.txt", "fine")
            // Twice: the file stays there, and no start may fail because of it.
            for round in 1...2 {
                try await pickup.startDaemon()
                let rows = try await pickup.deployments()
                let big = rows.filter { $0[1] == "big.bin" }
                #expect(big.count == round && big.allSatisfy { $0[3] == "failed" }, "\(rows)")
                #expect(big.first?[6] == "\"\(files)/big.bin\" \(Self.terabyteTooLarge)", "\(big)")
                #expect(rows.contains { $0[1] == "small.txt" && $0[3] == "deployed" }, "\(rows)")
                let pid = try #require(try await env.daemonPID())
                #expect(
                    Self.statusKiB(pid, "VmHWM") < 200 << 10, "berthd peaked at \(Self.statusKiB(pid, "VmHWM")) KiB")
                try await pickup.stopDaemon()
            }
        }
    }

    @Test func deployFileOfASparseTerabyteIsAFailedDeploymentNamingSizeAndLimit() async throws {
        try await TestEnvironment.with { env in
            let pickup = try await PickupHarness.start(env)
            let outside = try Files.makeTemp()
            defer { try? FileManager.default.removeItem(atPath: outside) }
            try Self.sparse(outside + "/huge.iso", size: 1 << 40)
            // gdbus, a client of its own, gets an InvalidArgument error naming the deployment; the signal carries
            // the sentence too.
            let r = try await env.gdbus([
                "call", "@BUS", "--dest", "org.berth.Berth1", "--object-path", PickupHarness.path, "--timeout", "20",
                "--method", "org.berth.Berth1.Pickup.DeployFile", outside + "/huge.iso", "files",
            ])
            #expect(r.status != 0 && r.stderr.contains("org.berth.Berth1.Error.InvalidArgument"), "\(r)")
            let seen = try await pickup.waitFor("huge.iso")
            #expect(!seen[0].ok && seen[0].detail == "\"\(outside)/huge.iso\" \(Self.terabyteTooLarge)", "\(seen)")
            #expect(r.stderr.contains("deployment \(seen[0].id) ") && r.stderr.contains("max_artifact_bytes"), "\(r)")
            let pid = try #require(try await env.daemonPID())
            #expect(Self.statusKiB(pid, "VmHWM") < 200 << 10, "berthd peaked at \(Self.statusKiB(pid, "VmHWM")) KiB")
        }
    }

    @Test func deployFileOfProcSelfPagemapIsRefusedAtOnce() async throws {
        try await TestEnvironment.with { env in
            _ = try await PickupHarness.start(env)
            let pid = try #require(try await env.daemonPID())
            // Before the fix the read never ended and grew by hundreds of MiB a second: a watchdog ends berthd should
            // it pass 400 MiB, so that the test fails rather than the machine.
            let watchdog = Task {
                while !Task.isCancelled {
                    if Self.statusKiB(pid, "VmRSS") > 400 << 10 { kill(pid, SIGKILL) }
                    try? await Task.sleep(for: .milliseconds(20))
                }
            }
            defer { watchdog.cancel() }
            let started = ContinuousClock.now
            let r = try await env.busctl([
                "--timeout=20", "call", "org.berth.Berth1", PickupHarness.path, PickupHarness.interface, "DeployFile",
                "ss", "/proc/self/pagemap", "files",
            ])
            #expect(ContinuousClock.now - started < .seconds(5))
            #expect(
                r.status != 0 && r.stderr.contains("\"/proc/self/pagemap\" is a file of procfs (/proc)")
                    && r.stderr.contains("not a regular file"), "\(r)")
            #expect(kill(pid, 0) == 0, "berthd is gone")
            #expect(Self.statusKiB(pid, "VmHWM") < 200 << 10, "berthd peaked at \(Self.statusKiB(pid, "VmHWM")) KiB")
            let error = try await env.gdbus([
                "call", "@BUS", "--dest", "org.berth.Berth1", "--object-path", PickupHarness.path, "--method",
                "org.berth.Berth1.Pickup.DeployFile", "/proc/self/pagemap", "files",
            ])
            #expect(error.stderr.contains("org.berth.Berth1.Error.InvalidArgument"), "\(error)")
        }
    }

    @Test func maxArtifactBytesSetsTheLimit() async throws {
        try await TestEnvironment.with { env in
            let pickup = try await PickupHarness.start(env, config: "pickup:\n  max_artifact_bytes: 1K\n")
            let files = pickup.folder("files")
            try Files.write(files + "/over.txt", String(repeating: "o", count: 2048))
            try Files.write(files + "/at.txt", String(repeating: "a", count: 1024))
            let over = try await pickup.waitFor("over.txt")
            #expect(
                !over[0].ok
                    && over[0].detail
                        == "\"\(files)/over.txt\" is 2048 bytes (2 KiB), over the limit of 1024 bytes (1 KiB) "
                        + "(pickup: max_artifact_bytes)",
                "\(over)")
            #expect(try await pickup.waitFor("at.txt")[0].ok)
            #expect(pickup.daemonLog.contains("over the limit of 1024 bytes"), "the failure is logged")
            // An import cannot change it: it is a config-file setting.
            let file = env.root + "/import.yaml"
            try FileSystem.writeAtomically(file, text: "pickup:\n  max_artifact_bytes: 1G\n")
            let r = try await env.busctl([
                "call", "org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager", "ImportConfig", "sbb",
                file, "false", "false",
            ])
            #expect(r.status != 0 && r.stderr.contains("pickup.max_artifact_bytes is set in the config file"), "\(r)")
        }
    }
}

extension TestEnvironment {
    /// The pid of the process owning org.berth.Berth1 on this test's bus.
    func daemonPID() async throws -> Int32? {
        let r = try await busctl([
            "call", "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
            "GetConnectionUnixProcessID", "s", "org.berth.Berth1",
        ])
        return r.stdout.split(separator: " ").last.flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }
}
