import Glibc

/// swift-log handler writing one line per record to stderr. Under systemd (`JOURNAL_STREAM` set) each line starts
/// with the syslog priority (`<3>` … `<7>`) so journald records the right level; otherwise it shows the level.
public struct StderrLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let journal: Bool

    public init(label: String, level: Logger.Level = .info, journal: Bool = getenv("JOURNAL_STREAM") != nil) {
        self.label = label
        self.logLevel = level
        self.journal = journal
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// The syslog priority of a swift-log level.
    public static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { $1 } }
        if let extra = event.metadata { all.merge(extra) { $1 } }
        let suffix = all.isEmpty ? "" : " " + all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let line =
            journal
            ? "<\(Self.priority(event.level))>\(label): \(event.message)\(suffix)\n"
            : "\(event.level): \(label): \(event.message)\(suffix)\n"
        var bytes = Array(line.utf8)
        _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
    }
}

/// The level set by the daemon's config; every handler made by `BerthLogging.bootstrap` follows it live.
public enum BerthLogging {
    private static let level = LevelBox()

    public static func bootstrap(level initial: Logger.Level) {
        level.set(initial)
        LoggingSystem.bootstrap { label in
            var handler = StderrLogHandler(label: label, level: level.get())
            handler.logLevel = level.get()
            return LiveLevelHandler(inner: handler)
        }
    }

    public static func setLevel(_ newLevel: Logger.Level) { level.set(newLevel) }
    static func currentLevel() -> Logger.Level { level.get() }

    /// Forwards to the stderr handler, reading the level from the shared box on each record.
    struct LiveLevelHandler: LogHandler {
        var inner: StderrLogHandler
        var metadata: Logger.Metadata {
            get { inner.metadata }
            set { inner.metadata = newValue }
        }
        var logLevel: Logger.Level {
            get { BerthLogging.currentLevel() }
            set { BerthLogging.setLevel(newValue) }
        }
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { inner[metadataKey: key] }
            set { inner[metadataKey: key] = newValue }
        }
        func log(event: LogEvent) { inner.log(event: event) }
    }
}

import Synchronization

final class LevelBox: Sendable {
    private let value = Mutex<Logger.Level>(.info)
    func get() -> Logger.Level { value.withLock { $0 } }
    func set(_ level: Logger.Level) { value.withLock { $0 = level } }
}
