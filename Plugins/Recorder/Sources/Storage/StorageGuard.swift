import BerthKit
import Synchronization

/// The low-disk policy: before each file, is there `min_free_bytes` left after it? If not, `skip` it, `stop`
/// recording, or `delete-oldest` recordings (file and row) until there is. Runs on the writer thread or another
/// dedicated thread (it calls statvfs and may delete files).
final class StorageGuard: Sendable {
    let layout: RecordingLayout
    let store: MetadataStore
    let minFreeBytes: UInt64
    let policy: RecorderConfig.LowDiskPolicy
    let logger: Logger
    /// Free bytes seen last, and the current shortage (nil when there is room).
    private let observed = Mutex<(free: UInt64?, shortage: String?)>((nil, nil))
    /// Overrides statvfs in tests.
    let freeBytesProvider: @Sendable (String) throws -> UInt64
    /// Told of each recording `delete-oldest` deleted (id, reason), for `RecordingDeleted`.
    let onDeleted: @Sendable (String, String) -> Void

    init(
        layout: RecordingLayout, store: MetadataStore, minFreeBytes: UInt64, policy: RecorderConfig.LowDiskPolicy,
        logger: Logger, freeBytesProvider: @escaping @Sendable (String) throws -> UInt64 = FileIO.freeBytes,
        onDeleted: @escaping @Sendable (String, String) -> Void = { _, _ in }
    ) {
        self.onDeleted = onDeleted
        self.layout = layout
        self.store = store
        self.minFreeBytes = minFreeBytes
        self.policy = policy
        self.logger = logger
        self.freeBytesProvider = freeBytesProvider
    }

    /// Free bytes on the storage filesystem now.
    func freeBytes() throws -> UInt64 {
        let free = try freeBytesProvider(layout.storage)
        observed.withLock { $0.free = free }
        return free
    }

    var lastFreeBytes: UInt64? { observed.withLock { $0.free } }
    var shortage: String? { observed.withLock { $0.shortage } }

    /// Decides whether a file of `expectedBytes` may be written.
    func admit(expectedBytes: UInt64) -> SegmentWriter.Admission {
        let needed = minFreeBytes + expectedBytes
        var free: UInt64
        do { free = try freeBytes() } catch {
            return .skip("cannot read free space: \(error)")
        }
        if free < needed, policy == .deleteOldest {
            free = deleteOldest(until: needed, free: free)
        }
        guard free < needed else {
            observed.withLock { $0.shortage = nil }
            return .write
        }
        let reason =
            "only \(free) bytes free on \"\(layout.storage)\", below min_free_bytes \(minFreeBytes) plus the next "
            + "recording (\(expectedBytes) bytes)"
        observed.withLock { $0.shortage = reason }
        switch policy {
        case .stop: return .stop(reason)
        case .skip, .deleteOldest: return .skip(reason)
        }
    }

    /// Deletes the oldest recordings until `needed` bytes are free or none are left; returns the free bytes. Only
    /// decided recordings are candidates: one still being processed (or not yet judged by the saving filters) is
    /// never deleted under it.
    private func deleteOldest(until needed: UInt64, free start: UInt64) -> UInt64 {
        var free = start
        while free < needed {
            let oldest: [RecordingRow]
            do { oldest = try store.oldestRecordings(limit: 8) } catch {
                logger.error("recorder: delete-oldest cannot list recordings: \(error)")
                return free
            }
            if oldest.isEmpty { return free }
            for row in oldest where free < needed {
                do {
                    try FileIO.remove(row.path)
                    try store.deleteRecording(id: row.id)
                    logger.notice("recorder: low disk: deleted oldest recording \"\(row.path)\"")
                    onDeleted(row.id, "low disk (delete-oldest)")
                    free = try freeBytes()
                } catch {
                    logger.error("recorder: low disk: cannot delete \"\(row.path)\": \(error)")
                    return free
                }
            }
        }
        return free
    }
}
