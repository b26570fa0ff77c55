import BerthKit
import Glibc

/// Which file names pickup ignores, which match a folder's patterns, and which names an upload may use.
enum NameRules {
    /// Editor and tool leftovers, dotfiles (rsync's temp files, `.git`) and pickup's own markers.
    static func isIgnored(_ name: String) -> Bool {
        name.isEmpty || name.hasPrefix(".") || name.hasSuffix("~") || name.hasSuffix(".swp")
            || name.hasSuffix(".swx") || name.hasSuffix(".tmp") || name.hasSuffix(".deployed")
            || name.hasSuffix(".failed") || name == "4913"  // vim's write test file
    }

    /// True when `name` matches one of the shell patterns (fnmatch); no patterns match everything.
    static func matches(_ name: String, patterns: [String]) -> Bool {
        patterns.isEmpty || patterns.contains { fnmatch($0, name, 0) == 0 }
    }

    /// The patterns a target uses when a folder names none.
    static func defaultPatterns(target: String) -> [String] {
        switch target {
        case "services": ["*.yaml", "*.yml"]
        case "config": ["*.yaml", "*.yml", "*.json"]
        default: target.hasPrefix("instances") ? ["*.tar.gz", "*.tgz", "*.tar"] : []
        }
    }

    /// Checks an uploaded file name: a plain name, no path, no NUL, 1 to 255 bytes.
    static func checkPlainName(_ name: String) throws {
        if name.isEmpty { throw BerthError.invalidArgument("pickup cannot deploy an upload with an empty file name") }
        if name.utf8.count > 255 {
            throw BerthError.invalidArgument(
                "pickup cannot deploy upload \"\(name.prefix(40))…\": the name is over 255 bytes")
        }
        if name.utf8.contains(0) || name.contains("/") || name == "." || name == ".." {
            throw BerthError.invalidArgument(
                "pickup cannot deploy upload \"\(name.replacingNUL)\": the file name must be a plain name, without a path"
            )
        }
        if isIgnored(name) {
            throw BerthError.invalidArgument("pickup cannot deploy upload \"\(name)\": that name is one pickup ignores")
        }
    }

    /// Checks a target string: services, config, files or instances/<app>.
    static func checkTarget(_ target: String, allowBareInstances: Bool = false) throws {
        if ["services", "config", "files"].contains(target) { return }
        if allowBareInstances && target == "instances" { return }
        if isServiceCodeTarget(target) { return }
        if target.hasPrefix("instances/") {
            let app = String(target.dropFirst("instances/".count))
            if isPlainIdentifier(app) { return }
        }
        throw BerthError.invalidArgument(
            "pickup target \"\(target)\" is not one of services, service:<name>, config, files or instances/<app>")
    }

    /// Letters, digits, `-`, `_`, `.` (not leading), 1 to 64 characters.
    static func isPlainIdentifier(_ text: String) -> Bool {
        guard !text.isEmpty, text.utf8.count <= 64, !text.hasPrefix(".") else { return false }
        return text.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x2d || c == 0x5f
                || c == 0x2e
        }
    }
}

extension String {
    /// The string with NUL bytes shown as `\0`, for messages.
    var replacingNUL: String { String(decoding: utf8.flatMap { $0 == 0 ? Array("\\0".utf8) : [$0] }, as: UTF8.self) }
}
