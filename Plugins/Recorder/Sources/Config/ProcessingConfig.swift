import BerthKit

/// What is run on each saved recording (`processing:`): zero or more processors, each a command. acoupi's models
/// (BirdNET, BatDetect2) plug in here as commands.
struct ProcessingConfig: Sendable, Equatable {
    /// Processors, each run once per recording (`processors:`).
    var processors: [ProcessorConfig] = []
    /// Processor runs at a time, over all processors (`concurrency`).
    var concurrency = 1

    var isEmpty: Bool { processors.isEmpty }
}

/// One processor (`processing.processors[i]`).
struct ProcessorConfig: Sendable, Equatable {
    /// Its name: acoupi's `model_output.model_name`, `[A-Za-z0-9_.-]`, at most 64 characters (`name`).
    var name: String
    /// argv; `argv[0]` a path or a name in `PATH` (`command`). Gets the WAV path as its last argument and the
    /// recording's metadata in `BERTH_RECORDING_*` variables.
    var command: [String]
    /// Seconds one run may take; then its process group gets SIGTERM, then SIGKILL (`timeout`).
    var timeoutSeconds = 600.0
    /// Runs before a recording counts as failed for this processor (`attempts`).
    var attempts = 3
    /// Seconds before a failed run is tried again; doubles for each further attempt (`retry_delay`).
    var retryDelaySeconds = 10.0
    /// Extra variables for the command (`environment`).
    var environment: [String: String] = [:]
}

extension ProcessingConfig {
    static func parse(_ r: ConfigReader) throws -> ProcessingConfig {
        var config = ProcessingConfig()
        config.concurrency = try r.int("concurrency", in: 1...64) ?? config.concurrency
        if let node = r.node("processors") {
            guard case .sequence(let items, _) = node else {
                throw r.error("processors", "expected a list of {name, command}, got \(node.kindName)")
            }
            var names: Set<String> = []
            for (position, item) in items.enumerated() {
                let p = try ConfigReader(item, path: "\(r.keyPath("processors"))[\(position)]")
                let name = try p.required("name", p.nonEmptyString)
                guard name.count <= 64, name.unicodeScalars.allSatisfy({ Self.nameCharacters.contains($0) }) else {
                    throw p.error("name", "\(BerthError.quote(name)) must be 1 to 64 of A-Z a-z 0-9 _ . -")
                }
                guard names.insert(name).inserted else { throw p.error("name", "\"\(name)\" is used twice") }
                let command = try p.required("command", p.stringList)
                guard let first = command.first, !first.isEmpty else {
                    throw p.error(
                        "command", "is empty: give the program and its arguments, e.g. [python3, /opt/model.py]")
                }
                var processor = ProcessorConfig(name: name, command: command)
                processor.timeoutSeconds = try p.double("timeout", in: 0.01...86400) ?? processor.timeoutSeconds
                processor.attempts = try p.int("attempts", in: 1...100) ?? processor.attempts
                processor.retryDelaySeconds = try p.double("retry_delay", in: 0...86400) ?? processor.retryDelaySeconds
                if let pairs = try p.stringMap("environment") {
                    processor.environment = Dictionary(pairs, uniquingKeysWith: { $1 })
                }
                try p.finish()
                config.processors.append(processor)
            }
        }
        try r.finish()
        return config
    }

    static let nameCharacters = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-".unicodeScalars)
}
