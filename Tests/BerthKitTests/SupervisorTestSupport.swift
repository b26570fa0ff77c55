import CBerthShim
import Glibc
import Synchronization
import Testing

@testable import BerthKit

/// Helpers for the supervisor tests: temp folders under /tmp, deadlines instead of sleeps, /proc inspection.
enum SupervisorTestSupport {
    /// A fresh folder under /tmp (short: notify socket paths must fit in 108 bytes).
    static func makeTempDirectory() -> String {
        var template = Array("/tmp/berth-sup-XXXXXX".utf8CString)
        let path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        return path
    }

    static func removeTree(_ path: String) {
        guard path.hasPrefix("/tmp/berth-sup-") else { return }
        _ = path.withCString { _ in system("rm -rf '\(path)'") }
    }

    /// A supervisor in a fresh runtime folder; the daemon-wide subreaper is enabled once for the test process.
    static func makeSupervisor() throws -> (Supervisor, String) {
        try Supervisor.becomeSubreaper()
        let dir = makeTempDirectory()
        var logger = Logger(label: "test.supervisor")
        logger.logLevel = .critical
        return (try Supervisor(runtimeDirectory: dir + "/run", logger: logger), dir)
    }

    /// Polls `condition` every 5 ms until it holds or `seconds` pass; returns whether it held.
    static func eventually(within seconds: Double = 10, _ condition: () -> Bool) async -> Bool {
        let deadline = cberth_now_monotonic_usec() + UInt64(seconds * 1e6)
        while cberth_now_monotonic_usec() < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return condition()
    }

    /// Processes (zombies included) whose process group is `pgid`.
    static func members(ofGroup pgid: Int32, includingZombies: Bool = true) -> [ProcStat] {
        precondition(pgid > 1, "not a supervised group: \(pgid)")
        return ProcStat.all().filter { $0.processGroup == pgid && (includingZombies || !$0.isZombie) }
    }

    static var now: UInt64 { cberth_now_monotonic_usec() }
}

/// Records every snapshot a unit publishes, with the monotonic time it arrived.
final class SnapshotRecorder: Sendable {
    private let entries = Mutex<[(time: UInt64, snapshot: SupervisorSnapshot)]>([])

    func record(_ snapshot: SupervisorSnapshot) {
        let time = cberth_now_monotonic_usec()
        entries.withLock { $0.append((time, snapshot)) }
    }

    var all: [(time: UInt64, snapshot: SupervisorSnapshot)] { entries.withLock { $0 } }

    /// The main pids, in spawn order.
    var spawnPIDs: [Int32] {
        var seen: [Int32] = []
        for entry in all where entry.snapshot.mainPID != 0 && !seen.contains(entry.snapshot.mainPID) {
            seen.append(entry.snapshot.mainPID)
        }
        return seen
    }

    /// The times at which a new main pid appeared (one per spawn).
    var spawnTimes: [UInt64] {
        var seen: Set<Int32> = []
        return all.compactMap { entry in
            let pid = entry.snapshot.mainPID
            guard pid != 0, seen.insert(pid).inserted else { return nil }
            return entry.time
        }
    }
}
