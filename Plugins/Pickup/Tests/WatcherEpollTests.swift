import BerthKit
import BerthTestSupport
import Foundation
import Synchronization
import Testing

@testable import PickupPlugin

/// The epoll thread is shared by every plugin (supervision, timers, pickup's inotify): nothing slow may run on it
/// or wait there behind a folder walk (issue 13).
@Suite struct WatcherEpollTests {
    /// A walk holds the watch table on the watcher's worker for as long as it runs. Here a stand-in holds it for
    /// 2 s while events keep arriving in a watched folder: an epoll timer armed meanwhile fires on time (judged
    /// loosely, 1 s, for a loaded machine), because the inotify callback only hands events over. Before, the
    /// callback took the table's lock on the epoll thread: every timer (and every child's exit) waited for the walk.
    /// Then a real walk of a 10,000-file tree (the benchmark walks 50,000) watches all of its 201 folders.
    @Test func aBigWalkDoesNotHoldTheEpollThread() async throws {
        let root = try Files.makeTemp()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let busy = root + "/busy"
        let tree = root + "/tree"
        try FileSystem.makeDirectories(busy)
        for folder in 0..<100 {
            let dir = tree + "/d\(folder)/e"
            try FileSystem.makeDirectories(dir)
            for file in 0..<100 {
                let fd = open(dir + "/f\(file).txt", O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
                guard fd >= 0 else { throw TestFailure("cannot create a file in \(dir): \(systemErrorText(errno))") }
                close(fd)
            }
        }
        let batches = Mutex(0)
        let watcher = try FolderWatcher(
            settle: .milliseconds(5), onBatch: { _ in batches.withLock { $0 += 1 } }, onOverflow: {})
        await watcher.add(PickupDirectory(name: "busy", path: busy, target: "files", origin: .config))
        try watcher.start()
        defer { watcher.stop() }

        // The stand-in walk: the worker holds the table for 2 s.
        let held = Atomic<Bool>(false)
        watcher.worker.submit {
            watcher.table.withLock { _ in
                held.store(true, ordering: .releasing)
                usleep(2_000_000)
                held.store(false, ordering: .releasing)
            }
        }
        try await waitUntil("the worker holds the table") { held.load(ordering: .acquiring) }
        for index in 0..<20 { try Files.write(busy + "/w\(index).txt", "\(index)") }
        let clock = ContinuousClock()
        let armed = clock.now
        let fired = Mutex<ContinuousClock.Instant?>(nil)
        FDWatcher.shared.after(.milliseconds(10)) { fired.withLock { $0 = clock.now } }
        try await waitUntil("the epoll timer fires", timeout: .seconds(5)) { fired.withLock { $0 } != nil }
        let late = try #require(fired.withLock { $0 }) - armed
        #expect(late < .seconds(1), "a 10 ms epoll timer fired after \(late) while the worker held the table")
        let stillHeld = held.load(ordering: .acquiring)
        #expect(stillHeld, "the stand-in walk ended before the timer was judged")
        try await waitUntil("the busy folder's changes arrive as a batch") { batches.withLock { $0 } > 0 }

        let start = clock.now
        await watcher.add(PickupDirectory(name: "tree", path: tree, target: "files", recursive: true, origin: .config))
        let walk = clock.now - start
        let watched = await watcher.watchedFolders.filter { $0.hasPrefix("tree:") }.count
        #expect(watched == 201, "\(watched) folders of the tree watched")
        print("walk of 10,000 files: \(walk); a 10 ms epoll timer fired after \(late) during a 2 s hold")
    }
}
