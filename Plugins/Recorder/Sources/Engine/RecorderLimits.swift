import BerthKit

/// What the recorder accepts from a client: deployment names a person can read in a listing or a terminal, and
/// recording lengths a device can record. Each refusal is `.invalidArgument` with a sentence quoting the value.
enum RecorderLimits {
    /// Characters in a deployment name.
    static let maxNameCharacters = 100
    /// `RecordNow` length in seconds: at least 10 ms (the schedule's shortest `duration`), at most a day.
    static let recordNowSeconds: ClosedRange<Double> = 0.01...86400

    /// The name trimmed of surrounding white space, or `.invalidArgument` when it is empty, longer than
    /// `maxNameCharacters`, holds a control, format (bidirectional overrides, zero-width), line or paragraph
    /// separator character, or a path separator (`/`, `\`: names end up in file listings and paths).
    static func deploymentName(_ raw: String) throws -> String {
        let name = raw.trimmingWhitespace
        guard !name.isEmpty else {
            throw BerthError.invalidArgument("a deployment needs a name, got \(BerthError.quote(raw))")
        }
        let count = name.unicodeScalars.count
        guard count <= maxNameCharacters else {
            throw BerthError.invalidArgument(
                "deployment name \(BerthError.quote(name, limit: 40)) has \(count) characters; at most \(maxNameCharacters)"
            )
        }
        for (position, scalar) in name.unicodeScalars.enumerated() {
            switch scalar.properties.generalCategory {
            case .control, .format, .lineSeparator, .paragraphSeparator, .surrogate, .privateUse, .unassigned:
                let hex = String(scalar.value, radix: 16, uppercase: true)
                let code = "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
                throw BerthError.invalidArgument(
                    "deployment name \(BerthError.quote(name, limit: 60)) holds the unprintable character \(code) at "
                        + "position \(position + 1); use printable text")
            default:
                if scalar == "/" || scalar == "\\" {
                    throw BerthError.invalidArgument(
                        "deployment name \(BerthError.quote(name, limit: 60)) holds \"\(scalar)\" at position "
                            + "\(position + 1); a name is not a path")
                }
            }
        }
        return name
    }

    /// `seconds` when it lies in `recordNowSeconds`, else `.invalidArgument` naming it.
    static func recordNow(_ seconds: Double) throws -> Double {
        guard seconds.isFinite, recordNowSeconds.contains(seconds) else {
            throw BerthError.invalidArgument(
                "record-now length \(seconds) s must be between \(recordNowSeconds.lowerBound) and "
                    + "\(Int(recordNowSeconds.upperBound)) seconds")
        }
        return seconds
    }
}
