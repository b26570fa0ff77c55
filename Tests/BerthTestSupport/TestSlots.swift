import Foundation

/// Bounds how many test worlds (a dbus-daemon, berthd, the processes a test drives) run at once. Swift Testing
/// starts every test of the run together; on a 2-core machine several hundred dbus-daemons and daemons starting at
/// once starve each other past every timeout. A world takes a slot for its whole life; a world made inside another
/// (a test with two hosts) uses its parent's, so nesting never waits on itself.
///
/// `BERTH_TEST_PARALLEL` sets the number of slots (default: 4 per core, at least 8).
public actor TestSlots {
    public static let shared = TestSlots(
        limit: ProcessInfo.processInfo.environment["BERTH_TEST_PARALLEL"].flatMap(Int.init)
            ?? max(8, 4 * ProcessInfo.processInfo.activeProcessorCount))

    /// Set while the current task (and its child tasks) holds a slot.
    @TaskLocal static var holding = false

    private let limit: Int
    private var used = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(limit: Int) { self.limit = max(1, limit) }

    /// Runs `body` holding a slot (or the slot the calling task already holds).
    public static func withSlot<T>(_ body: () async throws -> T) async throws -> T {
        if holding { return try await body() }
        await shared.acquire()
        do {
            let result = try await $holding.withValue(true) { try await body() }
            await shared.release()
            return result
        } catch {
            await shared.release()
            throw error
        }
    }

    private func acquire() async {
        if used < limit {
            used += 1
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    private func release() {
        if waiting.isEmpty {
            used -= 1
        } else {
            waiting.removeFirst().resume()  // the slot passes straight on
        }
    }
}
