import BerthKit
import BerthTestSupport
import Foundation
import Synchronization
import Testing

@testable import PickupPlugin

/// The epoll thread is shared by every plugin (supervision, timers, pickup's inotify): nothing slow may run on it
/// or wait there behind a folder walk (issue 13).
@Suite struct WatcherEpollTests {
    /// While AddDirectory's walk of a 50,000-file tree runs, events keep arriving in another watched folder, and a
    /// chain of epoll timers measures how late the epoll thread serves them. Before, the walk held the watcher's
    /// lock and the inotify callback waited for it on the epoll thread: every timer (and every child's exit) was
    /// late by the whole walk.
    @Test func aBigWalkDoesNotHoldTheEpollThread() async throws {
        let root = try Files.makeTemp()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let busy = root + "/busy"
        let tree = root + "/tree"
        try FileSystem.makeDirectories(busy)
        for folder in 0..<250 {
            let dir = tree + "/d\(folder)/e"
            try FileSystem.makeDirectories(dir)
            for file in 0..<200 {
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

        let done = Stop()
        // Events in the watched folder for as long as the walk runs.
        let writer = Task.detached {
            var index = 0
            while !done.flag.load(ordering: .acquiring) {
                try Files.write(busy + "/w\(index % 50).txt", "\(index)")
                index += 1
                try await Task.sleep(for: .milliseconds(2))
            }
        }
        // How late a 2 ms epoll timer fires, over and over.
        let probe = Task.detached { () -> (Duration, Int) in
            let clock = ContinuousClock()
            var latest = Duration.zero
            var count = 0
            while !done.flag.load(ordering: .acquiring) {
                let start = clock.now
                await FDWatcher.shared.sleep(for: .milliseconds(2))
                latest = max(latest, clock.now - start - .milliseconds(2))
                count += 1
            }
            return (latest, count)
        }
        try await Task.sleep(for: .milliseconds(50))
        let clock = ContinuousClock()
        let start = clock.now
        await watcher.add(PickupDirectory(name: "tree", path: tree, target: "files", recursive: true, origin: .config))
        let walk = clock.now - start
        done.flag.store(true, ordering: .releasing)
        try await writer.value
        let (late, timers) = await probe.value
        let watched = await watcher.watchedFolders.filter { $0.hasPrefix("tree:") }.count
        #expect(watched == 501, "\(watched) folders of the tree watched")
        // Loose (a regression check, not a benchmark): before, a timer was late by about the whole walk.
        #expect(
            late < max(walk / 3, .milliseconds(30)),
            "an epoll timer was \(late) late during a walk of \(walk) (\(timers) timers)")
        try await waitUntil("the busy folder's changes arrive as a batch") { batches.withLock { $0 } > 0 }
        print("walk of 50,000 files: \(walk); the latest of \(timers) epoll timers: \(late)")
    }
}

private final class Stop: Sendable {
    let flag = Atomic<Bool>(false)
}
