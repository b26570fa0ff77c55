/// Event names are `plugin.Signal` (`pickup.Deployed`, `services.StateChanged`); routes list them or patterns
/// `plugin.*` and `*`.
enum EventName {
    static func isPattern(_ text: String) -> Bool {
        if text == "*" { return true }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, Topic.isPlainName(String(parts[0])) else { return false }
        return parts[1] == "*" || Topic.isPlainName(String(parts[1]))
    }

    static func matches(pattern: String, _ event: String) -> Bool {
        if pattern == "*" || pattern == event { return true }
        guard pattern.hasSuffix(".*") else { return false }
        return event.hasPrefix(pattern.dropLast())
    }
}

/// MQTT topics: templates with {host}, {plugin}, {event}, {machine_id}.
enum Topic {
    static func isPlainName(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 64
            && text.utf8.allSatisfy { c in
                (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x2d
                    || c == 0x5f || c == 0x2e
            }
    }

    /// A value that may stand as one topic level: no separators or wildcards.
    static func isPlainLevel(_ text: String) -> Bool {
        !text.isEmpty && !text.utf8.contains { $0 == 0x2f || $0 == 0x2b || $0 == 0x23 || $0 == 0 }
    }

    static func problem(_ template: String) -> String? {
        if template.utf8.contains(where: { $0 == 0x2b || $0 == 0x23 || $0 == 0 }) {
            return "a topic may not contain the wildcards + or #, got \(template)"
        }
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{") {
            guard let close = rest[open...].firstIndex(of: "}") else { return "an unclosed { in \(template)" }
            let name = rest[rest.index(after: open)..<close]
            guard ["host", "plugin", "event", "machine_id"].contains(name) else {
                return "unknown placeholder {\(name)} in \(template): use {host}, {plugin}, {event}, {machine_id}"
            }
            rest = rest[rest.index(after: close)...]
        }
        return nil
    }

    static func expand(_ template: String, host: String, machineID: String, plugin: String, event: String) -> String {
        var out = template
        for (key, value) in [("{host}", host), ("{plugin}", plugin), ("{event}", event), ("{machine_id}", machineID)] {
            out = out.replacing(key, with: value)
        }
        return out
    }
}
