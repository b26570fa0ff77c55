import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// Only whole regular files deploy: never one that a process still has open for writing (whether berth learns of
/// it by an event or by a scan), never a FIFO or a device, and a file that cannot be read is a failed deployment.
@Suite(.serialized) struct WholeFileTests {
    /// Opens `path` for writing (created, truncated) and writes `text`, leaving it open.
    static func openAndWrite(_ path: String, _ text: String, flags: Int32 = O_CREAT | O_TRUNC) throws -> Int32 {
        let fd = open(path, O_WRONLY | O_CLOEXEC | flags, 0o644)
        guard fd >= 0 else { throw TestFailure("open \(path): errno \(errno)") }
        try FileSystem.writeAll(fd, Array(text.utf8), path: path)
        return fd
    }

    /// A second writer closing (close-write) while the first still writes: nothing deploys until the last closes.
    @Test func closeWriteWhileAnotherWriterHoldsItDeploysNothingYet() async throws {
        try await TestEnvironment.with { env in
            let pickup = try await PickupHarness.start(env)
            let path = pickup.folder("files") + "/shared.log"
            let first = try Self.openAndWrite(path, "first half, ")
            let second = try Self.openAndWrite(path, "an appended line, ", flags: O_APPEND)
            close(second)
            try await pickup.barrier(in: pickup.folder("files"))
            #expect(pickup.outcomes(named: "shared.log").isEmpty, "deployed while a writer still had it open")
            try FileSystem.writeAll(first, Array("second half".utf8), path: path)
            close(first)
            let seen = try await pickup.waitFor("shared.log")
            try await pickup.barrier(in: pickup.folder("files"))
            #expect(pickup.outcomes(named: "shared.log").count == 1)
            let sha = try await Files.sha256sum(path)
            #expect(seen.first?.ok == true && seen.first?.detail == sha)
        }
    }

    /// The kernel sends IN_CLOSE_WRITE a moment before it counts the writer gone, so a file can still look open
    /// when its last close was its last event. Here a second writer holds the file through a hard link in a folder
    /// nobody watches, and its close sends no event to pickup at all: the file deploys when pickup looks again.
    @Test func aFileThatLookedOpenAtItsLastEventDeploysWhenTheWriterIsGone() async throws {
        try await TestEnvironment.with { env in
            let pickup = try await PickupHarness.start(env)
            let path = pickup.folder("files") + "/late.txt"
            let elsewhere = env.root + "/unwatched"
            try FileSystem.makeDirectories(elsewhere)
            try Files.write(path, "")
            try await pickup.waitFor("late.txt")
            #expect(link(path, elsewhere + "/late.txt") == 0, "link: errno \(errno)")
            let hidden = try Self.openAndWrite(elsewhere + "/late.txt", "", flags: O_APPEND)
            try Files.write(path, "complete")  // close-write: pickup looks while `hidden` is still open
            try await Task.sleep(for: .milliseconds(500))  // pickup settles in 5 ms: it has looked by now
            close(hidden)  // no event for pickup's folder
            let seen = try await pickup.waitFor("late.txt", count: 2, timeout: .seconds(5))
            let sha = try await Files.sha256sum(path)
            #expect(seen[1].ok && seen[1].detail == sha, "\(seen)")
        }
    }

    /// The scan at start finds a file still being written: it waits for the writer's close, then deploys once.
    @Test func fileOpenForWritingAtStartDeploysWhenClosed() async throws {
        try await TestEnvironment.with { env in
            let pickup = try await PickupHarness.start(env)
            let files = pickup.folder("files")
            try await pickup.stopDaemon()
            let path = files + "/upload.bin"
            let fd = try Self.openAndWrite(path, String(repeating: "a", count: 100_000))
            try Files.write(files + "/whole.txt", "written while the daemon was down")
            try await pickup.startDaemon()
            try await pickup.waitFor("whole.txt")  // the scan ran
            try await pickup.barrier(in: files)
            #expect(pickup.outcomes(named: "upload.bin").isEmpty, "the scan deployed a half-written file")
            #expect(try await pickup.deployments().allSatisfy { $0[1] != "upload.bin" })
            try FileSystem.writeAll(fd, Array(String(repeating: "b", count: 100_000).utf8), path: path)
            close(fd)
            let seen = try await pickup.waitFor("upload.bin")
            let sha = try await Files.sha256sum(path)
            #expect(seen.count == 1 && seen[0].ok && seen[0].detail == sha, "\(seen)")
        }
    }

    /// A FIFO left in a folder (seen by the scan at start) or moved in must not hang the daemon: not deployed.
    @Test func fifoIsNeverOpenedAsAnArtifact() async throws {
        try await TestEnvironment.with { env in
            let pickup = try await PickupHarness.start(env)
            let files = pickup.folder("files")
            try await pickup.stopDaemon()
            #expect(mkfifo(files + "/at-start.pipe", 0o644) == 0)
            try await pickup.startDaemon()
            try await pickup.barrier(in: files)
            let outside = try Files.makeTemp()
            defer { try? FileManager.default.removeItem(atPath: outside) }
            #expect(mkfifo(outside + "/moved.pipe", 0o644) == 0)
            #expect(try await env.run(["mv", outside + "/moved.pipe", files + "/"]).status == 0)
            try await pickup.barrier(in: files)
            #expect(pickup.outcomes.allSatisfy { !$0.name.hasSuffix(".pipe") }, "\(pickup.outcomes)")

            let reply = await #expect(throws: DBusError.self) {
                _ = try await pickup.call("DeployFile", [.string(files + "/moved.pipe"), .string("files")])
            }
            #expect(reply?.name == "org.berth.Berth1.Error.InvalidArgument" && reply?.message.contains("a FIFO") == true)
        }
    }

    /// A file that exists but cannot be read is reported (DeployFailed naming it and the reason), not dropped.
    @Test func unreadableSourceIsAFailedDeployment() async throws {
        try await TestEnvironment.with { env in
            let pickup = try await PickupHarness.start(env)
            let files = pickup.folder("files")
            let outside = try Files.makeTemp()
            defer { try? FileManager.default.removeItem(atPath: outside) }
            // A symbolic link to itself: open fails with ELOOP, for root too.
            #expect(symlink("loop.txt", outside + "/loop.txt") == 0)
            #expect(try await env.run(["mv", outside + "/loop.txt", files + "/"]).status == 0)
            let seen = try await pickup.waitFor("loop.txt")
            #expect(!seen[0].ok && seen[0].detail.contains(files + "/loop.txt"), "\(seen)")
            #expect(seen[0].detail.contains("symbolic links"), "\(seen)")
            #expect(try await pickup.deployments().first { $0[1] == "loop.txt" }?[3] == "failed")
        }
    }

    /// DeployFile of a file some process is still writing is Busy, and deploys nothing.
    ///
    /// The writer is a child process, not a descriptor of this one: a test running beside this one that spawns a
    /// process would hand the child a copy of every descriptor until its exec, keeping the file open for writing
    /// for a moment after this test closed its own (a CI run saw exactly that).
    @Test func deployFileOfAFileBeingWrittenIsBusy() async throws {
        try await TestEnvironment.with { env in
            let pickup = try await PickupHarness.start(env)
            let outside = try Files.makeTemp()
            defer { try? FileManager.default.removeItem(atPath: outside) }
            let path = outside + "/report.csv"
            let release = outside + "/release"
            let writer = try ChildProcess.spawn(
                [
                    "sh", "-c", "exec 3>\"$0\"; printf 'a,b\\n' >&3; while [ ! -e \"$1\" ]; do sleep 0.01; done",
                    path, release,
                ], stdout: outside + "/writer.out", stderr: outside + "/writer.out")
            defer { writer.terminate() }
            try await waitUntil("the writer has written") { (try? FileSystem.read(path))?.count == 4 }
            let busy = await #expect(throws: DBusError.self) {
                _ = try await pickup.call("DeployFile", [.string(path), .string("files")])
            }
            #expect(busy?.name == "org.berth.Berth1.Error.Busy" && busy?.message.contains(path) == true, "\(busy)")
            try Files.write(release, "")
            #expect(try await writer.wait() == 0)
            let reply = try await pickup.call("DeployFile", [.string(path), .string("files")])
            let seen = try await pickup.waitFor("report.csv")
            #expect(seen.count == 1 && seen[0].ok && seen[0].id == reply.first?.string)
        }
    }
}
