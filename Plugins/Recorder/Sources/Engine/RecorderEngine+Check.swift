import BerthKit
import Glibc

extension RecorderEngine {
    /// acoupi's `check`, with real checks: the configuration, the PCM opening with the configured rate, channels
    /// and format, the storage folder taking a synced file, free space above `min_free_bytes`, the schedule, and
    /// the database opening and migrating. Never throws: every problem is a failed result.
    func check() async -> [CheckResult] {
        var results: [CheckResult] = []
        let problems = config.problems(zoneDirectory: zoneDirectory)
        guard case .success(let resolved) = resolved, problems.isEmpty else {
            results += problems.map { .failed("config", $0) }
            for name in ["device", "storage", "free_space", "schedule", "database"] {
                results.append(.failed(name, "not checked: the configuration is invalid"))
            }
            mutable.withLock { $0.lastChecks = results }
            return results
        }
        results.append(.ok("config", "valid"))
        results.append(await checkDevice(resolved))
        let (runtime, config) = (mutable.withLock { $0.runtime }, self.config)
        let provider = freeBytesProvider
        let storageResults =
            (try? await OSThread.run(name: "berth-rec-check") { () -> [CheckResult] in
                var results: [CheckResult] = []
                do {
                    try Self.probeStorage(resolved.layout)
                    results.append(.ok("storage", "\"\(resolved.layout.recordings)\" is writable"))
                } catch {
                    results.append(.failed("storage", BerthError.wrapping(error).message))
                }
                do {
                    let free = try provider(resolved.layout.storage)
                    let text =
                        "\(free) bytes free on \"\(resolved.layout.storage)\" (min_free_bytes \(config.minFreeBytes))"
                    results.append(free >= config.minFreeBytes ? .ok("free_space", text) : .failed("free_space", text))
                } catch {
                    results.append(.failed("free_space", BerthError.wrapping(error).message))
                }
                do {
                    let version =
                        if let runtime { try runtime.store.schemaVersion() } else {
                            try MetadataStore(path: resolved.layout.database).schemaVersion()
                        }
                    results.append(
                        .ok("database", "\"\(resolved.layout.database)\" opens at schema version \(version)"))
                } catch {
                    results.append(.failed("database", BerthError.wrapping(error).message))
                }
                return results
            }) ?? []
        results += storageResults
        results.append(.ok("schedule", describe(resolved.schedule)))
        if !config.processing.isEmpty { results.append(checkProcessors()) }
        mutable.withLock { $0.lastChecks = results }
        return results
    }

    /// Each processor's program exists and is executable (a path, or a name found in `PATH`).
    func checkProcessors() -> CheckResult {
        var found: [String] = []
        for processor in config.processing.processors {
            let program = processor.command[0]
            let path = program.contains("/") ? program : DetachedProcess.findExecutable(program)
            guard let path, access(path, X_OK) == 0 else {
                return .failed(
                    "processors",
                    "processor \"\(processor.name)\": \(BerthError.quote(program)) "
                        + (program.contains("/") ? "is not an executable file" : "was not found in PATH"))
            }
            found.append("\(processor.name) (\(path))")
        }
        return .ok("processors", found.joined(separator: ", "))
    }

    private func checkDevice(_ resolved: ResolvedRecorderConfig) async -> CheckResult {
        let format = resolved.format
        let what = "\(format.sampleRate) Hz, \(format.channels) channel(s), \(format.sample.rawValue)"
        if mutable.withLock({ $0.session != nil }) {
            return .ok("device", "ALSA PCM \"\(resolved.capture.device)\" is open and recording (\(what))")
        }
        do {
            try await probeDevice(resolved.capture)
            return .ok("device", "ALSA PCM \"\(resolved.capture.device)\" opens for capture at \(what)")
        } catch {
            return .failed("device", BerthError.wrapping(error).message)
        }
    }

    /// Creates, writes, syncs and removes a file where recordings are written.
    static func probeStorage(_ layout: RecordingLayout) throws {
        try layout.prepare()
        let path = "\(layout.partials)/.write-check-\(RecordingID.make())"
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw FileIO.error("cannot create a file in", layout.partials) }
        defer {
            close(fd)
            unlink(path)
        }
        try [UInt8](repeating: 0, count: 4096).withUnsafeBytes { try FileIO.writeAll(fd: fd, $0, path: path) }
        if fsync(fd) != 0 { throw FileIO.error("cannot sync a file in", layout.partials) }
    }

    /// The schedule in words, with the next recording when `withNext`.
    func describe(_ schedule: Schedule, withNext: Bool = true) -> String {
        let seconds = Double(schedule.durationUSec) / 1e6
        let windows = schedule.windows.map { $0.isAllDay ? "all day" : $0.description }.joined(separator: ", ")
        let what =
            schedule.continuous
            ? "continuously in \(seconds) s files"
            : "\(seconds) s every \(Double(schedule.intervalUSec) / 1e6) s"
        var text = "records \(what), \(windows) (\(schedule.zone.name))"
        if withNext, let next = schedule.nextRecording(afterUSec: clock()) {
            text += "; next recording at \(MetadataStore.text(next.start)) UTC"
        }
        return text
    }
}
