import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// Every way a file arrives in a pickup folder deploys it exactly once, with real tools and a real berthd.
@Suite(.serialized) struct ArrivalTests {
    @Test func cpMvRsyncAndRenameSavesDeployOnce() async throws {
        try await TestEnvironment.with { env in
            let pickup = try await PickupHarness.start(env)
            let files = pickup.folder("files")
            let outside = try Files.makeTemp()
            defer { try? FileManager.default.removeItem(atPath: outside) }
            for name in ["cp.txt", "mv.txt", "rsync.txt"] {
                try Files.write(outside + "/" + name, "content of \(name)")
            }

            #expect(try await env.run(["cp", outside + "/cp.txt", files + "/"]).status == 0)
            #expect(try await env.run(["mv", outside + "/mv.txt", files + "/"]).status == 0)
            #expect(try await env.run(["rsync", outside + "/rsync.txt", files + "/"]).status == 0)
            // An atomic save: write a temp file, then rename it over the name.
            try Files.write(files + "/.save.txt.tmp", "saved")
            #expect(rename(files + "/.save.txt.tmp", files + "/save.txt") == 0)

            for name in ["cp.txt", "mv.txt", "rsync.txt", "save.txt"] { try await pickup.waitFor(name) }
            try await pickup.barrier(in: files)
            for name in ["cp.txt", "mv.txt", "rsync.txt", "save.txt"] {
                let seen = pickup.outcomes(named: name)
                #expect(seen.count == 1 && seen[0].ok, "\(name): \(seen)")
            }
            #expect(pickup.outcomes(named: "cp.txt").first?.detail == (try await Files.sha256sum(files + "/cp.txt")))
            // rsync's own temp file (a dotfile) is never deployed.
            #expect(pickup.outcomes.allSatisfy { !$0.name.hasPrefix(".") })
        }
    }

    @Test func vimLikeSaveAndTouchRedeploy() async throws {
        try await TestEnvironment.with { env in
            let pickup = try await PickupHarness.start(env)
            let files = pickup.folder("files")
            try Files.write(files + "/notes.txt", "v1")
            try await pickup.waitFor("notes.txt")
            // vim: swap file, 4913 write test, backup copy notes.txt~, then the file written in place.
            try Files.write(files + "/.notes.txt.swp", "swap")
            try Files.write(files + "/4913", "")
            unlink(files + "/4913")
            #expect(try await env.run(["cp", files + "/notes.txt", files + "/notes.txt~"]).status == 0)
            try Files.write(files + "/notes.txt", "v2")
            unlink(files + "/.notes.txt.swp")
            try await pickup.waitFor("notes.txt", count: 2)
            // touch of an already deployed file deploys it again (same content).
            #expect(try await env.run(["touch", files + "/notes.txt"]).status == 0)
            try await pickup.waitFor("notes.txt", count: 3)
            try await pickup.barrier(in: files)
            let seen = pickup.outcomes(named: "notes.txt")
            #expect(seen.count == 3)
            #expect(seen[1].detail == (try await Files.sha256(of: "v2")) && seen[2].detail == seen[1].detail)
            #expect(
                pickup.outcomes.allSatisfy {
                    !$0.name.hasSuffix("~") && !$0.name.hasSuffix(".swp") && $0.name != "4913"
                })
        }
    }

    /// A real vim (Ex mode, swap file and write-backup on, as vim saves by default) saving a deployed file:
    /// one redeploy with what vim wrote; the swap file, the backup and vim's `4913` probe never deploy.
    @Test func realVimSaveDeploysOnce() async throws {
        let vim = try #require(
            ["vim", "vim.basic", "vim.tiny"].first { name in
                ["/usr/bin/", "/bin/"].contains { FileManager.default.isExecutableFile(atPath: $0 + name) }
            }, "vim is not installed (scripts/install-deps installs vim-tiny)")
        try await TestEnvironment.with { env in
            let pickup = try await PickupHarness.start(env)
            let files = pickup.folder("files")
            try Files.write(files + "/notes.txt", "v1\n")
            try await pickup.waitFor("notes.txt")
            let r = try await env.run(
                [vim, "-u", "NONE", "-i", "NONE", "-N", "-es", "-c", "set writebackup backupcopy=auto",
                 "-c", "%s/v1/v2/", "-c", "wq", files + "/notes.txt"])
            #expect(r.status == 0, "\(r)")
            try await pickup.waitFor("notes.txt", count: 2)
            try await pickup.barrier(in: files)
            let seen = pickup.outcomes(named: "notes.txt")
            #expect(seen.count == 2, "\(seen)")
            #expect(seen.last?.detail == (try await Files.sha256(of: "v2\n")))
            #expect(pickup.outcomes.allSatisfy { $0.name == "notes.txt" || $0.name.hasPrefix("zz-barrier") })
        }
    }

    /// A file being written (open, some bytes, a pause longer than any settle) is not deployed until it is closed,
    /// and then with everything that was written.
    @Test func halfWrittenFileIsNeverDeployed() async throws {
        try await TestEnvironment.with { env in
            let pickup = try await PickupHarness.start(env)
            let path = pickup.folder("files") + "/big.bin"
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            try #require(fd >= 0)
            let half = [UInt8](repeating: 0x61, count: 64 * 1024)
            try FileSystem.writeAll(fd, half, path: path)
            try await Task.sleep(for: .milliseconds(300))
            try await pickup.barrier(in: pickup.folder("files"))
            #expect(pickup.outcomes(named: "big.bin").isEmpty, "deployed while still open for writing")
            try FileSystem.writeAll(fd, half, path: path)
            close(fd)
            let seen = try await pickup.waitFor("big.bin")
            #expect(seen.count == 1)
            #expect(seen.first?.detail == (try await Files.sha256sum(path)))
            #expect(seen.first?.detail != (try await Files.sha256(of: String(repeating: "a", count: half.count))))
        }
    }

    @Test func gitCheckoutIntoAClone() async throws {
        try await TestEnvironment.with { env in
            let pickup = try await PickupHarness.start(env)
            let origin = try Files.makeTemp()
            let clone = try Files.makeTemp()
            defer {
                try? FileManager.default.removeItem(atPath: origin)
                try? FileManager.default.removeItem(atPath: clone)
            }
            func git(_ dir: String, _ args: [String]) async throws {
                let r = try await env.run(
                    ["git", "-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.com"] + args)
                if r.status != 0 { throw TestFailure("git \(args): \(r)") }
            }
            try await git(origin, ["init", "-q", "-b", "main"])
            try FileManager.default.createDirectory(atPath: origin + "/deploy/sub", withIntermediateDirectories: true)
            try Files.write(origin + "/deploy/base.txt", "base")
            try await git(origin, ["add", "."])
            try await git(origin, ["commit", "-q", "-m", "base"])
            try await git(origin, ["checkout", "-q", "-b", "more"])
            for i in 0..<20 { try Files.write(origin + "/deploy/sub/f\(i).txt", "file \(i)") }
            try await git(origin, ["add", "."])
            try await git(origin, ["commit", "-q", "-m", "more"])
            // A clone checks out the origin's current branch: back to main, so that the files arrive by checkout.
            try await git(origin, ["checkout", "-q", "main"])
            try await git(clone, ["clone", "-q", origin, "."])
            #expect(!FileManager.default.fileExists(atPath: clone + "/deploy/sub/f0.txt"))

            // The folder lives inside the clone; subfolders are watched, .git never is.
            _ = try await pickup.call(
                "AddDirectory",
                [
                    .string("repo"), .string(clone), .string("files"), .vardict([("recursive", .bool(true))]),
                ])
            try await pickup.waitFor("base.txt")
            try await git(clone, ["checkout", "-q", "more"])
            for i in 0..<20 { try await pickup.waitFor("f\(i).txt") }

            // git pull: the origin moves on (one file changed, ten new); the fast-forward deploys exactly those.
            try await git(origin, ["checkout", "-q", "more"])
            try Files.write(origin + "/deploy/sub/f0.txt", "file 0, pulled")
            for i in 0..<10 { try Files.write(origin + "/deploy/p\(i).txt", "pulled \(i)") }
            try await git(origin, ["add", "."])
            try await git(origin, ["commit", "-q", "-m", "pulled"])
            try await git(clone, ["pull", "-q", "--ff-only"])
            for i in 0..<10 { try await pickup.waitFor("p\(i).txt") }
            try await pickup.waitFor("f0.txt", count: 2)

            try await pickup.barrier(in: clone + "/deploy")
            for i in 1..<20 { #expect(pickup.outcomes(named: "f\(i).txt").count == 1) }
            for i in 0..<10 { #expect(pickup.outcomes(named: "p\(i).txt").count == 1) }
            let f0 = pickup.outcomes(named: "f0.txt")
            #expect(f0.count == 2)
            #expect(f0.last?.detail == (try await Files.sha256sum(clone + "/deploy/sub/f0.txt")))
            #expect(pickup.outcomes(named: "base.txt").count == 1)
            #expect(pickup.outcomes.allSatisfy { !$0.name.hasPrefix(".") && $0.name != "HEAD" && $0.name != "index" })
        }
    }

    @Test func deletedFolderComesBackAndIsWatchedAgain() async throws {
        try await TestEnvironment.with { env in
            let pickup = try await PickupHarness.start(env)
            let parent = try Files.makeTemp()
            defer { try? FileManager.default.removeItem(atPath: parent) }
            let folder = parent + "/drop"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            _ = try await pickup.call(
                "AddDirectory", [.string("drop"), .string(folder), .string("files"), .vardict([])])
            try Files.write(folder + "/one.txt", "1")
            try await pickup.waitFor("one.txt")
            try FileManager.default.removeItem(atPath: folder)
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try Files.write(folder + "/two.txt", "2")
            try await pickup.waitFor("two.txt")
        }
    }

    @Test func pausedChangesDeployOnResume() async throws {
        try await TestEnvironment.with { env in
            let pickup = try await PickupHarness.start(env)
            let files = pickup.folder("files")
            #expect(try await env.berthctl(["pickup", "pause"]).status == 0)
            try Files.write(files + "/queued.txt", "1")
            try Files.write(files + "/queued.txt", "2")
            // Deploy() is not paused: its outcome arriving proves the queued change was seen and held.
            _ = try await pickup.call(
                "Deploy", [.string("probe.txt"), .array(element: "y", [.byte(1)]), .string("files")])
            try await pickup.waitFor("probe.txt")
            let paused = try await pickup.client.getProperty(
                "org.berth.Berth1", PickupHarness.path, PickupHarness.interface, "Paused")
            #expect(paused == .bool(true))
            #expect(pickup.outcomes(named: "queued.txt").isEmpty)
            #expect(try await env.berthctl(["pickup", "resume"]).status == 0)
            try await pickup.waitFor("queued.txt")
            try await pickup.barrier(in: files)
            #expect(pickup.outcomes(named: "queued.txt").count == 1)
            #expect(pickup.outcomes(named: "queued.txt").first?.detail == (try await Files.sha256(of: "2")))
        }
    }
}
