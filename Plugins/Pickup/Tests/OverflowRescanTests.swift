import BerthKit
import BerthTestSupport
import Foundation
import Synchronization
import Testing

@testable import PickupPlugin

/// The rescan paths in-process: an inotify queue overflow (`IN_Q_OVERFLOW` cannot be provoked per process, so
/// the event is handed to the watcher directly) and names pickup must ignore.
@Suite struct OverflowRescanTests {
    final class Recorder: Sendable {
        let records = Mutex<[DeploymentRecord]>([])
        /// The threads deployments ran on.
        let threads = Mutex<Set<String>>([])
        func names() -> [String] { records.withLock { $0.map(\.name) } }
    }

    /// A pickup service on real inotify in `root`, with `dirs` from config and `importConfig` as the config target.
    static func makeService(
        _ root: String, dirs: [PickupDirectory] = [],
        importConfig: @escaping @Sendable (String) async throws -> Void = { _ in
            throw BerthError.notSupported("no importer")
        }
    ) async throws -> (PickupService, Recorder) {
        let targets = DeployTargets(peer: { _ in nil }, importConfig: importConfig)
        var config = PickupConfig()
        config.settle = .milliseconds(5)
        config.dirs = dirs
        let service = try PickupService(stateDirectory: root, config: config, targets: targets)
        let recorder = Recorder()
        await service.engine.setAnnouncer { record in
            recorder.threads.withLock { _ = $0.insert(currentThreadName()) }
            recorder.records.withLock { $0.append(record) }
        }
        try await service.start(config: config)
        return (service, recorder)
    }

    @Test func overflowRescansAndDeploysOnlyWhatChanged() async throws {
        let root = try Files.makeTemp()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (service, recorder) = try await Self.makeService(root)
        let files = root + "/files"
        try Files.write(files + "/a.txt", "one")
        try await waitUntil("a.txt deployed") { recorder.names() == ["a.txt"] }

        // Stop reading inotify: changes from now on are "lost" as in an overflow.
        service.watcher.stop()
        try Files.write(files + "/b.txt", "two")
        try Files.write(files + "/.hidden", "ignored")
        try Files.write(files + "/b.txt~", "ignored")
        await service.watcher.handle([.queueOverflow])
        try await waitUntil("b.txt deployed by the rescan") { recorder.names().contains("b.txt") }
        // A second overflow finds nothing new: still exactly one deployment each.
        await service.watcher.handle([.queueOverflow])
        try Files.write(files + "/c.txt", "three")
        await service.watcher.handle([.queueOverflow])
        try await waitUntil("c.txt deployed") { recorder.names().contains("c.txt") }
        #expect(recorder.names() == ["a.txt", "b.txt", "c.txt"])
        // Reading, hashing, storing and logging block: they ran on the engine's thread, never on the shared pool.
        #expect(recorder.threads.withLock { $0 } == ["berth-pickup"])
        await service.stop()
    }

    @Test func restartRescanDeploysChangesMadeWhileStopped() async throws {
        let root = try Files.makeTemp()
        defer { try? FileManager.default.removeItem(atPath: root) }
        var (service, recorder) = try await Self.makeService(root)
        try Files.write(root + "/files/same.txt", "same")
        try Files.write(root + "/files/edit.txt", "v1")
        try await waitUntil("both deployed") { Set(recorder.names()) == ["same.txt", "edit.txt"] }
        await service.stop()

        try Files.write(root + "/files/edit.txt", "v2")
        try Files.write(root + "/files/new.txt", "new")
        (service, recorder) = try await Self.makeService(root)
        try await waitUntil("edit.txt and new.txt deployed") { Set(recorder.names()) == ["edit.txt", "new.txt"] }
        try Files.write(root + "/files/zz.txt", "barrier")
        try await waitUntil("barrier") { recorder.names().contains("zz.txt") }
        #expect(recorder.names().sorted() == ["edit.txt", "new.txt", "zz.txt"])
        await service.stop()
    }

    @Test func ignoredNames() {
        for name in [".x", "a.swp", "a~", ".#a", "a.tmp", "a.yaml.deployed", "a.yaml.failed", "4913"] {
            #expect(NameRules.isIgnored(name), "\(name)")
        }
        #expect(!NameRules.isIgnored("web.yaml"))
        let dir = PickupDirectory(name: "x", path: "/x", target: "instances", origin: .builtin)
        #expect(dir.target(forRelative: "shop/shop-1.tar.gz") == "instances/shop")
        #expect(dir.target(forRelative: "shop-1.tar.gz") == nil)
        let git = PickupDirectory(name: "g", path: "/g", target: "files", recursive: true, origin: .config)
        #expect(git.target(forRelative: ".git/objects/ab") == nil)
        #expect(git.target(forRelative: "src/a.txt") == "files")
    }
}
