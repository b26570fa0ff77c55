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
        watcher.add(PickupDirectory(name: "t", path: root, target: "files", recursive: true, origin: .config))
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
}
