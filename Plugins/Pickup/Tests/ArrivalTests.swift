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
            try await pickup.barrier(in: clone + "/deploy")
            for i in 0..<20 { #expect(pickup.outcomes(named: "f\(i).txt").count == 1) }
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
