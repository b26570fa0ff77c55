import BerthKit
import BerthTestSupport
import Foundation
import Testing

@testable import PickupPlugin

/// What a deployment's caller is told: a failure is an error reply with the reason (the signal goes out too), a
/// refused name says why, a file that cannot deploy where it lies says so once, and a restart alone changes
/// nothing that was deployed (a person's upload or Rollback stands; a failed file is not tried again).
@Suite(.serialized) struct DeployOutcomeTests {
    func bytes(_ text: String) -> DBusValue { .array(element: "y", Array(text.utf8).map { .byte($0) }) }

    /// The error a call replied with (nil when it succeeded).
    func failure(_ pickup: PickupHarness, _ member: String, _ args: [DBusValue]) async -> DBusError? {
        do {
            _ = try await pickup.call(member, args)
            return nil
        } catch {
            return error as? DBusError
        }
    }

    @Test func aFailedDeploymentIsAnErrorReplyAndStillSignalled() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libTestFixtureGood.so"])
            let pickup = try await PickupHarness.start(env)
            // A service definition without the services plugin: NotSupported, naming the deployment.
            let web = await failure(
                pickup, "Deploy", [.string("web.yaml"), bytes("exec: [/bin/true]\n"), .string("services")])
            let seen = try await pickup.waitFor("web.yaml")
            #expect(web?.name == "org.berth.Berth1.Error.NotSupported", "\(String(describing: web))")
            #expect(web?.message.contains("deployment \(seen[0].id) ") == true, "\(String(describing: web))")
            #expect(web?.message.contains("services plugin is not active") == true)
            #expect(!seen[0].ok)
            // A bad config: InvalidConfig, and the message names the upload, not pickup's stored copy.
            let config = await failure(
                pickup, "Deploy", [.string("broken.yaml"), bytes("fixture:\n  typo: 1\n"), .string("config")])
            #expect(config?.name == "org.berth.Berth1.Error.InvalidConfig", "\(String(describing: config))")
            #expect(config?.message.contains("typo") == true && config?.message.contains("/store/") == false)
            #expect(config?.message.contains("upload \"broken.yaml\"") == true, "\(String(describing: config))")
            // Dropped in the config folder: the error names the file dropped (line 2 of it).
            let dropped = pickup.folder("config") + "/broken.yaml"
            try Files.write(dropped, "fixture:\n  typo: 1\n")
            let fromFolder = try await pickup.waitFor("broken.yaml", count: 2)
            #expect(fromFolder[1].detail.contains(dropped + ":2"), "\(fromFolder[1].detail)")
            #expect(!fromFolder[1].detail.contains("/store/"), "\(fromFolder[1].detail)")
            // DeployFile and Rollback reply the same way.
            let file = await failure(pickup, "DeployFile", [.string(dropped), .string("config")])
            #expect(file?.name == "org.berth.Berth1.Error.InvalidConfig", "\(String(describing: file))")
            // A good deployment still replies with its id.
            let ok = try await pickup.call("Deploy", [.string("ok.txt"), bytes("fine"), .string("files")])
            let okSeen = try await pickup.waitFor("ok.txt")
            #expect(okSeen[0].ok && ok.first?.string == okSeen[0].id)
        }
    }

    /// A full disk: the upload is StorageFull, never an id without a log row.
    @Test(.enabled(if: geteuid() == 0, "mounting a small tmpfs needs root")) func aFullDiskIsStorageFull() async throws
    {
        try await TestEnvironment.with { env in
            let state = env.stateHome + "/berth/pickup"
            try FileSystem.makeDirectories(state)
            guard mount("tmpfs", state, "tmpfs", 0, "size=1m") == 0 else {
                Issue.record("cannot mount a tmpfs on \(state): \(systemErrorText(errno))")
                return
            }
            defer { umount2(state, Int32(MNT_DETACH)) }
            let pickup = try await PickupHarness.start(env)
            _ = try await pickup.call("Deploy", [.string("first.txt"), bytes("fits"), .string("files")])
            try await pickup.waitFor("first.txt")
            // Fill the disk to the last block.
            let filler = open(state + "/filler", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            #expect(filler >= 0)
            let block = [UInt8](repeating: 7, count: 4096)
            while block.withUnsafeBytes({ write(filler, $0.baseAddress, 4096) }) > 0 {}
            close(filler)
            let full = await failure(
                pickup, "Deploy",
                [.string("big.txt"), bytes(String(repeating: "x", count: 64 << 10)), .string("files")])
            #expect(full?.name == "org.berth.Berth1.Error.StorageFull", "\(String(describing: full))")
            #expect(full?.message.contains("big.txt") == true, "\(String(describing: full))")
            let seen = try await pickup.waitFor("big.txt")
            #expect(!seen[0].ok)
            unlink(state + "/filler")
            try await pickup.stopDaemon()
        }
    }

    @Test func deceivingUploadNamesAreRefused() async throws {
        try await TestEnvironment.with { env in
            let pickup = try await PickupHarness.start(env)
            for name in [
                "a\nb.txt", "a\tb.txt", "\u{1b}[31mred.txt", "bell\u{07}.txt", "del\u{7f}.txt", "c1\u{9b}.txt",
                "invoice\u{202E}fdp.exe", "iso\u{2066}late.txt", "zero\u{200B}width.txt", "bom\u{FEFF}.txt",
                "-rf", "--help",
            ] {
                let error = await failure(pickup, "Deploy", [.string(name), bytes("x"), .string("files")])
                #expect(
                    error?.name == "org.berth.Berth1.Error.InvalidArgument",
                    "\(name.debugDescription): \(String(describing: error))")
                #expect(error?.message.contains("\n") == false && error?.message.contains("\u{1b}") == false)
            }
            #expect(pickup.outcomes.isEmpty, "\(pickup.outcomes)")
            // Names from elsewhere in the world still deploy.
            for name in ["café.txt", "日本語.txt", "a-b_c.txt", "x y.txt"] {
                _ = try await pickup.call("Deploy", [.string(name), bytes("x"), .string("files")])
            }
            // Each Deployed signal goes out before its reply, but reaches this test's subscription on its own way.
            try await waitUntil("four Deployed signals") { pickup.outcomes.count == 4 }
            #expect(pickup.outcomes.count == 4)
        }
    }

    /// A person's Rollback and upload stand across a restart until the file itself changes again.
    @Test func rollbackAndUploadStandOverARestart() async throws {
        try await TestEnvironment.with { env in
            let pickup = try await PickupHarness.start(env)
            let files = pickup.folder("files")
            let published = pickup.stateDir + "/published/"
            try Files.write(files + "/page.txt", "v1")
            try await pickup.waitFor("page.txt")
            try Files.write(files + "/page.txt", "v2")
            try await pickup.waitFor("page.txt", count: 2)
            _ = try await pickup.call("Rollback", [.string("page.txt"), .string("files")])
            try await pickup.waitFor("page.txt", count: 3)
            // An event of the file that changed nothing (opened for writing and closed: a late event looks the
            // same) leaves the Rollback standing.
            let opened = open(files + "/page.txt", O_WRONLY | O_CLOEXEC)
            #expect(opened >= 0)
            close(opened)
            try await pickup.barrier(in: files, "after-open")
            #expect(pickup.outcomes(named: "page.txt").count == 3, "\(pickup.outcomes(named: "page.txt"))")
            #expect(try FileSystem.readText(published + "page.txt") == "v1")
            try Files.write(files + "/other.txt", "from the folder")
            try await pickup.waitFor("other.txt")
            _ = try await pickup.call("Deploy", [.string("other.txt"), bytes("uploaded"), .string("files")])
            try await pickup.waitFor("other.txt", count: 2)

            try await pickup.stopDaemon()
            try await pickup.startDaemon()
            try await pickup.barrier(in: files)
            #expect(pickup.outcomes(named: "page.txt").count == 3, "\(pickup.outcomes(named: "page.txt"))")
            #expect(pickup.outcomes(named: "other.txt").count == 2, "\(pickup.outcomes(named: "other.txt"))")
            #expect(try FileSystem.readText(published + "page.txt") == "v1")
            #expect(try FileSystem.readText(published + "other.txt") == "uploaded")
            // The file's next change deploys it.
            try Files.write(files + "/page.txt", "v3")
            try await pickup.waitFor("page.txt", count: 4)
            #expect(try FileSystem.readText(published + "page.txt") == "v3")
            // A change made while the daemon was down deploys at the start.
            try await pickup.stopDaemon()
            try Files.write(files + "/other.txt", "changed while down")
            try await pickup.startDaemon()
            try await pickup.waitFor("other.txt", count: 3)
            #expect(try FileSystem.readText(published + "other.txt") == "changed while down")
        }
    }

    /// Files a target cannot take fail once, saying why; a file that failed is not tried again at a start when it
    /// did not change; subfolders, editors' temporaries and patterns a folder chose itself stay silent.
    @Test func unsupportedFilesFailOnceAndUnchangedFailuresAreNotRetried() async throws {
        try await TestEnvironment.with { env in
            let pickup = try await PickupHarness.start(env)
            let services = pickup.folder("services")
            try Files.write(services + "/hello.py", "print('hello')\n")
            try Files.write(services + "/web.yaml___jb_tmp___", "exec: [/bin/true]\n")
            try Files.write(services + "/web.yaml", "exec: [/bin/true]\n")  // fails: no services plugin
            try Files.write(pickup.folder("config") + "/notes.txt", "notes")
            let shop = pickup.folder("instances") + "/shop"
            try FileManager.default.createDirectory(atPath: shop, withIntermediateDirectories: true)
            try Files.write(shop + "/README", "read me")
            try Files.write(pickup.folder("instances") + "/loose.tar.gz", "bundle")
            let hello = try await pickup.waitFor("hello.py")
            #expect(!hello[0].ok && hello[0].target == "services", "\(hello)")
            #expect(hello[0].detail.contains("\"hello.py\"") && hello[0].detail.contains("*.yaml"), "\(hello[0])")
            let notes = try await pickup.waitFor("notes.txt")
            #expect(!notes[0].ok && notes[0].target == "config" && notes[0].detail.contains("*.json"))
            let readme = try await pickup.waitFor("README")
            #expect(!readme[0].ok && readme[0].target == "instances/shop" && readme[0].detail.contains("*.tar.gz"))
            let loose = try await pickup.waitFor("loose.tar.gz")
            #expect(!loose[0].ok && loose[0].detail.contains("instances/APP/loose.tar.gz"), "\(loose)")
            try await pickup.waitFor("web.yaml")
            try await pickup.barrier(in: pickup.folder("files"))

            try await pickup.stopDaemon()
            try await pickup.startDaemon()
            try await pickup.barrier(in: pickup.folder("files"))
            for name in ["hello.py", "web.yaml", "notes.txt", "README", "loose.tar.gz"] {
                #expect(pickup.outcomes(named: name).count == 1, "\(name): \(pickup.outcomes(named: name))")
            }
            #expect(pickup.outcomes.allSatisfy { !$0.name.contains("___jb_") })
            // A change (or touch) tries it again.
            #expect(try await env.run(["touch", services + "/web.yaml"]).status == 0)
            try await pickup.waitFor("web.yaml", count: 2)
            let rows = try await pickup.deployments()
            #expect(rows.filter { $0[1] == "hello.py" }.count == 1)
        }
    }
}
