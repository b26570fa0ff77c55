import BerthKit

/// Reads a processor's output: each line that starts with `{` is one detection, a JSON object with `label`
/// (string), `score`, `start_s`, `end_s` (numbers, seconds from the start of the file), optional `low_hz` and
/// `high_hz`, and any further keys with string, number or boolean values as extra tags. Other lines (stderr shares
/// the stream) are diagnostics for the log. A malformed detection fails the run, naming the line.
enum DetectionParser {
    static func parse(_ lines: [String], processor: String) throws -> (detections: [Detection], diagnostics: [String]) {
        var detections: [Detection] = []
        var diagnostics: [String] = []
        for (index, raw) in lines.enumerated() {
            let line = raw.trimmingWhitespace
            guard line.hasPrefix("{") else {
                if !line.isEmpty { diagnostics.append(line) }
                continue
            }
            let source = "processor \"\(processor)\" output line \(index + 1)"
            do {
                detections.append(try detection(line, source: source))
            } catch {
                let message = BerthError.wrapping(error).message
                throw BerthError.failed(
                    message.hasPrefix(source) ? message : "\(source) \(BerthError.quote(line, limit: 120)): \(message)")
            }
        }
        return (detections, diagnostics)
    }

    static func detection(_ line: String, source: String) throws -> Detection {
        let node = try YAMLParser.parseJSON(line, source: source)
        guard case .mapping(let entries, _) = node else {
            throw BerthError.invalidArgument("\(source): expected a JSON object, got \(node.kindName)")
        }
        var fields: [String: ConfigNode] = [:]
        for entry in entries { fields[entry.key] = entry.value }
        func number(_ key: String, required: Bool = true) throws -> Double? {
            guard let value = fields[key] else {
                if required { throw BerthError.invalidArgument("\(source): \"\(key)\" is missing") }
                return nil
            }
            guard case .scalar(let text, _, false) = value, let n = Double(text), n.isFinite else {
                throw BerthError.invalidArgument("\(source): \"\(key)\" must be a number")
            }
            return n
        }
        guard case .scalar(let label, _, true) = fields["label"] ?? .null(node.mark), !label.isEmpty else {
            throw BerthError.invalidArgument("\(source): \"label\" must be a non-empty string")
        }
        let start = try number("start_s")!
        let end = try number("end_s")!
        guard start >= 0, end >= start else {
            throw BerthError.invalidArgument(
                "\(source): start_s \(start) and end_s \(end) must satisfy 0 <= start_s <= end_s")
        }
        var detection = Detection(
            label: label, score: try number("score")!, startSeconds: start, endSeconds: end,
            lowHz: try number("low_hz", required: false), highHz: try number("high_hz", required: false))
        let known: Set<String> = ["label", "score", "start_s", "end_s", "low_hz", "high_hz"]
        for entry in entries where !known.contains(entry.key) {
            guard case .scalar(let text, _, _) = entry.value else {
                throw BerthError.invalidArgument("\(source): tag \"\(entry.key)\" must be a string, number or boolean")
            }
            detection.tags.append(Detection.Tag(key: entry.key, value: text))
        }
        return detection
    }
}
