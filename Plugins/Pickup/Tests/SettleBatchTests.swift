import BerthKit
import BerthTestSupport
import Foundation
import Synchronization
import Testing

@testable import PickupPlugin

/// The watcher alone: a burst becomes one batch with each path once; new subfolders are watched.
@Suite struct SettleBatchTests {
    @Test func aBurstIsOneBatchWithEachPathOnce() async throws {
        let root = try Files.makeTemp()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let batches = Mutex<[[PickupChange]]>([])
        let watcher = try FolderWatcher(
            settle: .milliseconds(150), onBatch: { batch in batches.withLock { $0.append(batch) } }, onOverflow: {})
        await watcher.add(PickupDirectory(name: "t", path: root, target: "files", recursive: true, origin: .config))
        try watcher.start()
        defer { watcher.stop() }
        try FileManager.default.createDirectory(atPath: root + "/sub/deeper", withIntermediateDirectories: true)
        for i in 0..<40 {
            try Files.write(root + "/f\(i).txt", "one")
            try Files.write(root + "/f\(i).txt", "two")  // written twice: still one change
        }
        try Files.write(root + "/sub/deeper/inner.txt", "x")
        try Files.write(root + "/.hidden", "ignored")
        try await waitUntil("a batch arrived") { !batches.withLock { $0 }.isEmpty }
        let all = batches.withLock { $0 }
        #expect(all.count == 1, "batches: \(all.map(\.count))")
        let paths = all.flatMap { $0.map(\.relative) }
        #expect(paths.count == 41 && Set(paths).count == 41, "\(paths)")
        #expect(paths.contains("sub/deeper/inner.txt"))
    }

    /// A real `git checkout` of a tree into a folder inside a clone, with the default settle time: one batch, each
    /// file once, nothing from `.git/`.
    @Test func gitCheckoutIsOneBatchAtTheDefaultSettle() async throws {
        let origin = try Files.makeTemp()
        let clone = try Files.makeTemp()
        defer {
            try? FileManager.default.removeItem(atPath: origin)
            try? FileManager.default.removeItem(atPath: clone)
        }
        func git(_ dir: String, _ args: [String]) async throws {
            let r = try await Command.run(
                ["git", "-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.com"] + args)
            if r.status != 0 { throw TestFailure("git \(args): \(r)") }
        }
        try await git(origin, ["init", "-q", "-b", "main"])
        try Files.write(origin + "/base.txt", "base")
        try await git(origin, ["add", "."])
        try await git(origin, ["commit", "-q", "-m", "base"])
        try await git(origin, ["checkout", "-q", "-b", "tree"])
        try FileManager.default.createDirectory(atPath: origin + "/a/b", withIntermediateDirectories: true)
        for i in 0..<300 { try Files.write(origin + (i % 3 == 0 ? "/a/b" : "") + "/t\(i).txt", "file \(i)") }
        try await git(origin, ["add", "."])
        try await git(origin, ["commit", "-q", "-m", "tree"])
        try await git(origin, ["checkout", "-q", "main"])
        try await git(clone, ["clone", "-q", origin, "."])

        let batches = Mutex<[[PickupChange]]>([])
        let watcher = try FolderWatcher(
            settle: PickupConfig().settle, onBatch: { batch in batches.withLock { $0.append(batch) } },
            onOverflow: {})
        await watcher.add(PickupDirectory(name: "repo", path: clone, target: "files", recursive: true, origin: .config))
        try watcher.start()
        defer { watcher.stop() }
        try await git(clone, ["checkout", "-q", "tree"])
        try await waitUntil("300 changes arrived") { batches.withLock { $0.joined().count } >= 300 }
        try await Task.sleep(for: .milliseconds(200))
        let all = batches.withLock { $0 }
        #expect(all.count == 1, "batch sizes: \(all.map(\.count))")
        let paths = all.joined().map(\.relative)
        #expect(paths.count == 300 && Set(paths).count == 300)
        #expect(paths.allSatisfy { $0.hasSuffix(".txt") && !$0.hasPrefix(".git") })
    }

    /// A stale `index.lock` (git killed mid-checkout) holds a batch back for `gitQuiet` at most; the lock going
    /// away releases a held batch at once (one settle later).
    @Test func staleGitLockDelaysABatchOnlyForGitQuiet() async throws {
        let clone = try Files.makeTemp()
        defer { try? FileManager.default.removeItem(atPath: clone) }
        let r = try await Command.run(["git", "-C", clone, "init", "-q"])
        #expect(r.status == 0, "\(r)")
        try Files.write(clone + "/.git/index.lock", "")
        final class Batches: Sendable {
            let list = Mutex<[[PickupChange]]>([])
            var count: Int { list.withLock { $0.count } }
        }
        func watch(gitQuiet: Duration) async throws -> (FolderWatcher, Batches) {
            let batches = Batches()
            let watcher = try FolderWatcher(
                settle: .milliseconds(5), gitQuiet: gitQuiet,
                onBatch: { batch in batches.list.withLock { $0.append(batch) } }, onOverflow: {})
            await watcher.add(
                PickupDirectory(name: "repo", path: clone, target: "files", recursive: true, origin: .config))
            try watcher.start()
            return (watcher, batches)
        }

        let (first, firstBatches) = try await watch(gitQuiet: .milliseconds(300))
        let written = ContinuousClock.now
        try Files.write(clone + "/one.txt", "1")
        try await waitUntil("one.txt deployed despite the stale lock") { firstBatches.count == 1 }
        let waited = ContinuousClock.now - written
        #expect(waited >= .milliseconds(300), "held for \(waited) only")
        first.stop()

        // With a gitQuiet far beyond the test's patience, only the lock going away can release the batch.
        let (second, secondBatches) = try await watch(gitQuiet: .seconds(600))
        defer { second.stop() }
        try Files.write(clone + "/two.txt", "2")
        try await Task.sleep(for: .milliseconds(200))
        #expect(secondBatches.count == 0, "two.txt must wait while the lock exists")
        try FileManager.default.removeItem(atPath: clone + "/.git/index.lock")
        try await waitUntil("two.txt deployed once git's lock is gone") { secondBatches.count == 1 }
        #expect(secondBatches.list.withLock { $0[0].map(\.relative) } == ["two.txt"])
    }

    /// A folder inside a linked work tree (`.git` is a file naming the git directory) finds that git directory.
    @Test func linkedWorkTreeFindsItsGitDirectory() async throws {
        let root = try Files.makeTemp()
        defer { try? FileManager.default.removeItem(atPath: root) }
        func git(_ args: [String]) async throws {
            let r = try await Command.run(
                ["git", "-C", root + "/main", "-c", "user.name=t", "-c", "user.email=t@example.com"] + args)
            if r.status != 0 { throw TestFailure("git \(args): \(r)") }
        }
        try FileManager.default.createDirectory(atPath: root + "/main/deploy", withIntermediateDirectories: true)
        try await git(["init", "-q", "-b", "main"])
        try Files.write(root + "/main/deploy/a.txt", "a")
        try await git(["add", "."])
        try await git(["commit", "-q", "-m", "a"])
        try await git(["worktree", "add", "-q", root + "/linked"])
        try FileManager.default.createDirectory(atPath: root + "/plain", withIntermediateDirectories: true)

        #expect(GitWorkTree.gitDirectory(containing: root + "/main/deploy") == root + "/main/.git")
        let linked = try #require(GitWorkTree.gitDirectory(containing: root + "/linked/deploy"))
        #expect(linked.hasPrefix(root + "/main/.git/worktrees/"))
        #expect(FileManager.default.fileExists(atPath: linked + "/HEAD"))
        #expect(GitWorkTree.gitDirectory(containing: root + "/plain") == nil)
    }
}
