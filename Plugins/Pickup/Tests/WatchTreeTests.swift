import BerthKit
import BerthTestSupport
import Foundation
import Glibc
import Synchronization
import Testing

@testable import PickupPlugin

/// Which folders a recursive pickup folder watches as its tree changes (real inotify, in-process): symbolic links
/// are not followed, a subfolder moved away stops being watched under its old name, an overflow watches folders
/// created while events were lost, and a change that is undone before it applies changes nothing.
@Suite struct WatchTreeTests {
    static func site(_ root: String) throws -> PickupDirectory {
        try FileSystem.makeDirectories(root + "/site")
        return PickupDirectory(
            name: "site", path: root + "/site", target: "files", recursive: true, undeployOnDelete: true,
            origin: .config)
    }

    static func deployed(_ recorder: OverflowRescanTests.Recorder, _ name: String) -> [DeploymentRecord] {
        recorder.records.withLock { $0.filter { $0.name == name && $0.status == .deployed } }
    }

    /// The record of what is deployed of `name` in files now (the newest deployed or undeployed one).
    static func current(_ service: PickupService, _ name: String, target: String = "files") async throws
        -> DeploymentRecord?
    {
        try await service.engine.listDeployments(limit: 1000).first {
            $0.name == name && $0.target == target && ($0.status == .deployed || $0.status == .undeployed)
        }
    }

    /// `a/NAME` with "A", then `b/NAME` with "B": two files of one name, b's deployed last.
    static func deployTwins(_ name: String, in site: PickupDirectory, _ recorder: OverflowRescanTests.Recorder)
        async throws
    {
        for (folder, content) in [("a", "A"), ("b", "B")] {
            try FileSystem.makeDirectories(site.path + "/" + folder)
            let before = deployed(recorder, name).count
            try Files.write(site.path + "/" + folder + "/" + name, content)
            try await waitUntil("\(folder)/\(name) deployed") { deployed(recorder, name).count == before + 1 }
        }
    }

    /// Deploys `zz-<tag>.txt` and waits for it: every change made before it has been applied.
    static func barrier(_ recorder: OverflowRescanTests.Recorder, in folder: String, _ tag: String) async throws {
        try Files.write(folder + "/zz-\(tag).txt", tag)
        try await waitUntil("the barrier \(tag) deployed") { !deployed(recorder, "zz-\(tag).txt").isEmpty }
    }

    /// A link to a parent inside a recursive folder (`sub/up -> ..`): the walk does not follow it. It used to
    /// descend until PATH_MAX, watching the same folders under some 800 names; two such links made the walk
    /// exponential and hung the start (this test keeps to one, so that a regression fails rather than hangs).
    @Test func symbolicLinksToFoldersAreNotFollowed() async throws {
        let root = try Files.makeTemp()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let site = try Self.site(root)
        try FileSystem.makeDirectories(site.path + "/sub")
        #expect(symlink("..", site.path + "/sub/up") == 0)
        try Files.write(site.path + "/sub/a.txt", "a")
        let (service, recorder) = try await OverflowRescanTests.makeService(root, dirs: [site])
        try await waitUntil("a.txt deployed by the start rescan") { !Self.deployed(recorder, "a.txt").isEmpty }
        #expect(await service.watcher.watchedFolders.filter { $0.hasPrefix("site:") } == ["site:", "site:sub"])
        try Files.write(site.path + "/sub/a.txt", "a2")
        try await Self.barrier(recorder, in: site.path, "1")
        #expect(Self.deployed(recorder, "a.txt").map(\.source) == [site.path + "/sub/a.txt", site.path + "/sub/a.txt"])
        await service.stop()
    }

    /// A subfolder moved out of the tree is no longer watched as that subfolder: writing into it where it went
    /// deploys nothing, and the folder that took its place is the one watched.
    @Test func subfolderMovedAwayIsNotWatchedUnderItsOldName() async throws {
        let root = try Files.makeTemp()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let site = try Self.site(root)
        let (service, recorder) = try await OverflowRescanTests.makeService(root, dirs: [site])
        try FileSystem.makeDirectories(site.path + "/app")
        try Files.write(site.path + "/app/index.html", "v1")
        try await waitUntil("v1 deployed") { Self.deployed(recorder, "index.html").count == 1 }

        let outside = try Files.makeTemp()
        defer { try? FileManager.default.removeItem(atPath: outside) }
        #expect(rename(site.path + "/app", outside + "/old") == 0)
        try FileSystem.makeDirectories(site.path + "/app")
        try Files.write(site.path + "/app/index.html", "v2")
        try await waitUntil("v2 deployed") { Self.deployed(recorder, "index.html").count == 2 }
        try Files.write(outside + "/old/index.html", "v3, not in a pickup folder")
        try await Self.barrier(recorder, in: site.path, "1")
        #expect(unlink(outside + "/old/index.html") == 0)
        try await Self.barrier(recorder, in: site.path, "2")

        let outcomes = recorder.records.withLock { $0.filter { $0.name == "index.html" } }
        #expect(outcomes.map(\.status) == [.deployed, .deployed], "\(outcomes)")
        #expect(try await Self.current(service, "index.html")?.sha256 == SHA256.hex(Array("v2".utf8)))
        #expect(await service.watcher.watchedFolders.filter { $0.hasPrefix("site:") } == ["site:", "site:app"])
        await service.stop()
    }

    /// After an overflow the watches are made again: a subfolder created while events were lost is watched.
    @Test func overflowWatchesFoldersCreatedWhileEventsWereLost() async throws {
        let root = try Files.makeTemp()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let site = try Self.site(root)
        let (service, recorder) = try await OverflowRescanTests.makeService(root, dirs: [site])
        service.watcher.stop()
        try FileSystem.makeDirectories(site.path + "/new/deeper")
        try Files.write(site.path + "/new/deeper/a.txt", "a")
        _ = service.watcher.inotify.readEvents()  // lost, as in an overflow
        await service.watcher.handle([.queueOverflow])
        try service.watcher.start()
        try await waitUntil("a.txt deployed by the rescan") { Self.deployed(recorder, "a.txt").count == 1 }
        #expect(await service.watcher.watchedFolders.contains("site:new/deeper"))
        try Files.write(site.path + "/new/deeper/b.txt", "b")
        try await waitUntil("b.txt deployed", timeout: .seconds(3)) { Self.deployed(recorder, "b.txt").count == 1 }
        await service.stop()
    }

    /// A removal that is undone by the time it applies (an editor renames the old file away, then writes the new
    /// one) undeploys nothing: the file there is compared with the deployed one.
    @Test func removalOfAFileThatIsBackUndeploysNothing() async throws {
        let root = try Files.makeTemp()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let site = try Self.site(root)
        let (service, recorder) = try await OverflowRescanTests.makeService(root, dirs: [site])
        try Files.write(site.path + "/web.txt", "v1")
        try await waitUntil("v1 deployed") { Self.deployed(recorder, "web.txt").count == 1 }
        let removed = PickupChange(
            directory: "site", path: site.path + "/web.txt", relative: "web.txt", kind: .removed,
            detectedUSec: SystemClock.wallUSec())
        await service.engine.process([removed])
        #expect(try await Self.current(service, "web.txt")?.status == .deployed)
        // Back with other content: that content deploys.
        try Files.write(site.path + "/web.txt", "v2")
        await service.engine.process([removed])
        #expect(try await Self.current(service, "web.txt")?.sha256 == SHA256.hex(Array("v2".utf8)))
        // Really gone: undeployed.
        #expect(unlink(site.path + "/web.txt") == 0)
        await service.engine.process([removed])
        #expect(try await Self.current(service, "web.txt")?.status == .undeployed)
        await service.stop()
    }

    /// A file saved while the start rescan runs deploys once: its event is read (and stamped) as it happens, so the
    /// rescan's deployment of the new content answers it. (The config folder is rescanned before files; its import
    /// saves the file.)
    @Test func aFileSavedDuringTheStartRescanDeploysOnce() async throws {
        let root = try Files.makeTemp()
        defer { try? FileManager.default.removeItem(atPath: root) }
        var (service, recorder) = try await OverflowRescanTests.makeService(root, importConfig: { _ in })
        try Files.write(root + "/files/x.txt", "v1")
        try Files.write(root + "/config/c.yaml", "a: 1\n")
        try await waitUntil("both deployed") {
            !Self.deployed(recorder, "x.txt").isEmpty && !Self.deployed(recorder, "c.yaml").isEmpty
        }
        await service.stop()

        try Files.write(root + "/config/c.yaml", "a: 2\n")
        let x = root + "/files/x.txt"
        (service, recorder) = try await OverflowRescanTests.makeService(
            root,
            importConfig: { _ in
                try Files.write(x, "v2, saved during the rescan")
                try await Task.sleep(for: .milliseconds(100))
            })
        try await Self.barrier(recorder, in: root + "/files", "1")
        #expect(Self.deployed(recorder, "x.txt").count == 1, "\(recorder.records.withLock { $0 })")
        await service.stop()
    }

    /// Two files of one name in one target (a/index.html, b/index.html): the one written last is deployed, a restart
    /// or an overflow rescan deploys neither again, and deleting the other one undeploys nothing.
    @Test func twoFilesOfOneNameDoNotTakeTurnsAtEachRescan() async throws {
        let root = try Files.makeTemp()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let site = try Self.site(root)
        var (service, recorder) = try await OverflowRescanTests.makeService(root, dirs: [site])
        try await Self.deployTwins("index.html", in: site, recorder)
        await service.stop()

        (service, recorder) = try await OverflowRescanTests.makeService(root, dirs: [site])
        await service.watcher.handle([.queueOverflow])
        try await Self.barrier(recorder, in: site.path, "1")
        #expect(Self.deployed(recorder, "index.html").isEmpty, "\(recorder.records.withLock { $0 })")
        #expect(try await Self.current(service, "index.html")?.source == site.path + "/b/index.html")

        #expect(unlink(site.path + "/a/index.html") == 0)
        try await Self.barrier(recorder, in: site.path, "2")
        let current = try await Self.current(service, "index.html")
        #expect(
            current?.status == .deployed && current?.sha256 == SHA256.hex(Array("B".utf8)),
            "\(String(describing: current))")
        // The deployed one deleted: undeployed.
        #expect(unlink(site.path + "/b/index.html") == 0)
        try await Self.barrier(recorder, in: site.path, "3")
        #expect(try await Self.current(service, "index.html")?.status == .undeployed)
        await service.stop()
    }

    /// The start rescan is the engine's first work: a batch waits behind it. A config file rewritten during its own
    /// import at start is imported again afterwards, never twice at once.
    @Test func batchesWaitForTheStartRescan() async throws {
        let root = try Files.makeTemp()
        defer { try? FileManager.default.removeItem(atPath: root) }
        var (service, recorder) = try await OverflowRescanTests.makeService(root, importConfig: { _ in })
        let file = root + "/config/c.yaml"
        try Files.write(file, "a: 1\n")
        try await waitUntil("v1 deployed") { Self.deployed(recorder, "c.yaml").count == 1 }
        await service.stop()

        try Files.write(file, "a: 2\n")
        // (imports under way, most at once, rewrites left)
        let imports = Mutex((running: 0, most: 0, rewrites: 1))
        (service, recorder) = try await OverflowRescanTests.makeService(
            root,
            importConfig: { _ in
                let rewrite = imports.withLock { state -> Bool in
                    state.running += 1
                    state.most = max(state.most, state.running)
                    defer { state.rewrites = max(0, state.rewrites - 1) }
                    return state.rewrites > 0
                }
                if rewrite { try Files.write(file, "a: 3\n") }
                try await Task.sleep(for: .milliseconds(150))
                imports.withLock { $0.running -= 1 }
            })
        try await waitUntil("v2 and v3 deployed") { Self.deployed(recorder, "c.yaml").count == 2 }
        try await Self.barrier(recorder, in: root + "/files", "1")
        #expect(imports.withLock { $0.most } == 1)
        #expect(
            Self.deployed(recorder, "c.yaml").map(\.sha256) == ["a: 2\n", "a: 3\n"].map { SHA256.hex(Array($0.utf8)) })
        await service.stop()
    }

    /// What is deployed from outside the folders (DeployFile of a file elsewhere) does not hold back a file of that
    /// name in a folder: the rescan deploys the folder's file.
    @Test func aDeploymentFromOutsideTheFoldersDoesNotHoldBackTheFoldersFile() async throws {
        let root = try Files.makeTemp()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let outside = try Files.makeTemp()
        defer { try? FileManager.default.removeItem(atPath: outside) }
        var (service, recorder) = try await OverflowRescanTests.makeService(root)
        try Files.write(outside + "/web.txt", "from elsewhere")
        _ = try await service.engine.deployFile(path: outside + "/web.txt", target: "files")
        await service.stop()
        try Files.write(root + "/files/web.txt", "from the folder")
        (service, recorder) = try await OverflowRescanTests.makeService(root)
        try await waitUntil("the folder's web.txt deployed") { Self.deployed(recorder, "web.txt").count == 1 }
        #expect(try await Self.current(service, "web.txt")?.source == root + "/files/web.txt")
        await service.stop()
    }

    /// Same-name files: a removal of the other one undeploys nothing even when the deployed one changes in the same
    /// batch; a file replaced by a folder is a removal.
    @Test func removalsOfSameNameFilesAndOfFilesReplacedByFolders() async throws {
        let root = try Files.makeTemp()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let site = try Self.site(root)
        let (service, recorder) = try await OverflowRescanTests.makeService(root, dirs: [site])
        try await Self.deployTwins("x.txt", in: site, recorder)
        service.watcher.stop()  // the batch below is given by hand
        #expect(unlink(site.path + "/a/x.txt") == 0)
        try Files.write(site.path + "/b/x.txt", "B2")
        func change(_ relative: String, _ kind: PickupChange.Kind) -> PickupChange {
            PickupChange(
                directory: "site", path: site.path + "/" + relative, relative: relative, kind: kind,
                detectedUSec: SystemClock.wallUSec())
        }
        await service.engine.process([change("a/x.txt", .removed), change("b/x.txt", .changed)])
        let outcomes = recorder.records.withLock { $0.filter { $0.name == "x.txt" }.map(\.status) }
        #expect(outcomes == [.deployed, .deployed, .deployed], "\(outcomes)")

        // b/x.txt replaced by a folder: undeployed.
        #expect(unlink(site.path + "/b/x.txt") == 0)
        try FileSystem.makeDirectories(site.path + "/b/x.txt")
        await service.engine.process([change("b/x.txt", .removed)])
        #expect(try await Self.current(service, "x.txt")?.status == .undeployed)
        await service.stop()
    }

    /// A pickup folder's root moved away: none of its watches follow it (writes there deploy nothing), and the
    /// folder made in its place is watched.
    @Test func rootMovedAwayKeepsNoWatchOnTheOldTree() async throws {
        let root = try Files.makeTemp()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let site = try Self.site(root)
        try FileSystem.makeDirectories(site.path + "/a")
        let (service, recorder) = try await OverflowRescanTests.makeService(root, dirs: [site])
        try Files.write(site.path + "/a/index.html", "v1")
        try await waitUntil("v1 deployed") { Self.deployed(recorder, "index.html").count == 1 }
        #expect(rename(site.path, root + "/site.bak") == 0)
        try FileSystem.makeDirectories(site.path + "/a")
        try Files.write(site.path + "/a/index.html", "v2")
        try await waitUntil("v2 deployed") { Self.deployed(recorder, "index.html").count == 2 }
        try Files.write(root + "/site.bak/a/index.html", "v3, moved away")
        try await Self.barrier(recorder, in: site.path, "1")
        #expect(Self.deployed(recorder, "index.html").count == 2)
        #expect(await service.watcher.watchedFolders.filter { $0.hasPrefix("site:") } == ["site:", "site:a"])
        await service.stop()
    }

    /// An overflow also drops watches whose moves were lost: a subfolder moved away while events were lost is no
    /// longer watched.
    @Test func overflowDropsWatchesOfFoldersMovedWhileEventsWereLost() async throws {
        let root = try Files.makeTemp()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let site = try Self.site(root)
        try FileSystem.makeDirectories(site.path + "/app")
        let (service, recorder) = try await OverflowRescanTests.makeService(root, dirs: [site])
        #expect(await service.watcher.watchedFolders.filter { $0.hasPrefix("site:") } == ["site:", "site:app"])
        service.watcher.stop()
        #expect(rename(site.path + "/app", root + "/app.old") == 0)
        _ = service.watcher.inotify.readEvents()  // lost, as in an overflow
        await service.watcher.handle([.queueOverflow])
        try service.watcher.start()
        #expect(await service.watcher.watchedFolders.filter { $0.hasPrefix("site:") } == ["site:"])
        try Files.write(root + "/app.old/index.html", "not in a pickup folder")
        try await Self.barrier(recorder, in: site.path, "1")
        #expect(Self.deployed(recorder, "index.html").isEmpty)
        await service.stop()
    }

    /// A name claimed by an AddDirectory under way is taken (a second claim fails) but is not yet a folder: not
    /// listed, so not removable, until it is added.
    @Test func aClaimedNameIsTakenButNotListedUntilAdded() async throws {
        let root = try Files.makeTemp()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let site = try Self.site(root)
        let (service, _) = try await OverflowRescanTests.makeService(root)
        #expect(service.watcher.claim(site))
        #expect(!service.watcher.claim(site))
        #expect(!service.watcher.directories.contains { $0.name == "site" })
        await service.watcher.add(site)
        #expect(service.watcher.directories.contains { $0.name == "site" })
        await service.watcher.remove("site")
        #expect(service.watcher.claim(site))
        await service.stop()
    }

    /// An upload of an artifact whose deployment from a folder is under way waits for it, and is the one logged
    /// last; an upload of another artifact does not wait.
    @Test func anUploadWaitsForTheDeploymentOfThatArtifactOnly() async throws {
        let root = try Files.makeTemp()
        defer { try? FileManager.default.removeItem(atPath: root) }
        // `hold`: an import stays under way until a second one runs beside it (at most 5 s), so the second half
        // does not depend on the upload starting within a fixed time on a busy machine.
        let imports = Mutex((running: 0, most: 0, hold: false))
        let (service, recorder) = try await OverflowRescanTests.makeService(
            root,
            importConfig: { _ in
                let hold = imports.withLock {
                    $0.running += 1
                    $0.most = max($0.most, $0.running)
                    return $0.hold
                }
                if hold {
                    let deadline = ContinuousClock.now + .seconds(5)
                    while imports.withLock({ $0.most < 2 }) && ContinuousClock.now < deadline {
                        try await Task.sleep(for: .milliseconds(10))
                    }
                } else {
                    try await Task.sleep(for: .milliseconds(300))
                }
                imports.withLock { $0.running -= 1 }
            })
        try Files.write(root + "/config/c.yaml", "a: 1\n")
        try await waitUntil("the import of c.yaml under way") { imports.withLock { $0.running } == 1 }
        let same = await service.engine.upload(name: "c.yaml", bytes: Array("a: 2\n".utf8), target: "config")
        #expect(same.status == .deployed)
        #expect(imports.withLock { $0.most } == 1)
        #expect(recorder.records.withLock { $0.map(\.source) } == [root + "/config/c.yaml", "upload"])
        #expect(try await Self.current(service, "c.yaml", target: "config")?.source == "upload")

        imports.withLock {
            $0.most = 0
            $0.hold = true
        }
        try Files.write(root + "/config/e.yaml", "e: 1\n")
        try await waitUntil("the import of e.yaml under way") { imports.withLock { $0.running } == 1 }
        let other = await service.engine.upload(name: "d.yaml", bytes: Array("d: 1\n".utf8), target: "config")
        #expect(other.status == .deployed)
        #expect(imports.withLock { $0.most } == 2)
        await service.stop()
    }
}
