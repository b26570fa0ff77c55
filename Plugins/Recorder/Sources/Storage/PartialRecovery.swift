import BerthKit

/// Crash recovery, run once at start before anything records: every file left in `recordings/.partial` (by a
/// `kill -9`, a power cut, a failed rename) is either finished — header sizes taken from the file size, row
/// added, renamed into place — or removed when it holds less than the minimum audio or no readable header.
/// Each decision is logged.
enum PartialRecovery {
    enum Action: Sendable, Equatable {
        /// Finished and stored with `recovered = 1`.
        case finalised(RecordingRow)
        /// Its row already existed (the crash came between the row and the rename): only renamed.
        case published(id: String, path: String)
        case removed(path: String, reason: String)
    }

    static func run(layout: RecordingLayout, store: MetadataStore, minimumSeconds: Double, logger: Logger) throws
        -> [Action]
    {
        var actions: [Action] = []
        for file in try layout.partialFiles() {
            let action = try recover(file, layout: layout, store: store, minimumSeconds: minimumSeconds)
            switch action {
            case .finalised(let row):
                logger.notice(
                    "recorder: finalised partial recording \"\(file.path)\" (\(row.durationSeconds) s) as \"\(row.path)\""
                )
            case .published(_, let path):
                logger.notice("recorder: moved finished recording \"\(file.path)\" to \"\(path)\"")
            case .removed(let path, let reason):
                logger.notice("recorder: removed partial recording \"\(path)\": \(reason)")
            }
            actions.append(action)
        }
        return actions
    }

    private static func recover(
        _ file: (path: String, startUSec: Int64?, id: String?), layout: RecordingLayout, store: MetadataStore,
        minimumSeconds: Double
    ) throws -> Action {
        guard let startUSec = file.startUSec, let id = file.id else {
            try FileIO.remove(file.path)
            return .removed(path: file.path, reason: "not a recording's partial file name")
        }
        guard let repair = try WAVWriter.repair(path: file.path) else {
            try FileIO.remove(file.path)
            return .removed(path: file.path, reason: "no readable WAV header")
        }
        if let existing = try store.recording(id: id) {
            try layout.publish(partial: file.path, to: existing.path)
            return .published(id: id, path: existing.path)
        }
        let seconds = Double(repair.frames) / Double(repair.format.sampleRate)
        guard seconds >= minimumSeconds, repair.frames > 0 else {
            try FileIO.remove(file.path)
            return .removed(path: file.path, reason: "only \(seconds) s of audio (minimum \(minimumSeconds) s)")
        }
        let row = RecordingRow(
            id: id, path: layout.finalPath(id: id, startUSec: startUSec), startUSec: startUSec,
            durationSeconds: seconds,
            sampleRate: repair.format.sampleRate, channels: repair.format.channels,
            deploymentID: try store.deployment(activeAtUSec: startUSec)?.id,
            sampleFormat: repair.format.sample.rawValue,
            sizeBytes: FileIO.fileSize(file.path) ?? 0, overruns: 0, recovered: true,
            kept: store.keepAtInsert ? true : nil)
        try store.insertRecording(row)
        try layout.publish(partial: file.path, to: row.path)
        return .finalised(row)
    }
}
