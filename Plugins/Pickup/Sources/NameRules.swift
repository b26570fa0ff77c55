import BerthKit
import Glibc

/// Which file names pickup ignores, which match a folder's patterns, and which names an upload may use.
enum NameRules {
    /// Editor and tool leftovers, dotfiles (rsync's temp files, `.git`) and pickup's own markers; `extra` adds a
    /// folder's own `ignore` patterns (fnmatch).
    static func isIgnored(_ name: String, extra: [String] = []) -> Bool {
        name.isEmpty || name.hasPrefix(".") || name.hasSuffix(".deployed") || name.hasSuffix(".failed")
            || isEditorTemporary(name) || (!extra.isEmpty && matches(name, patterns: extra))
    }

    /// The temporaries and backups of the common editors' saves, which must never deploy:
    /// - JetBrains IDEs' safe write: `NAME___jb_tmp___` (the new content), `NAME___jb_old___` (the old file
    ///   renamed away), `NAME___jb_bak___`;
    /// - VS Code's atomic save `NAME.vsctmp`, Chromium's File System Access `NAME.crswap`;
    /// - Kate (KTextEditor's QSaveFile) `NAME.EXT.XXXXXX` (six random letters and digits) and `.NAME.kate-swp`;
    /// - gedit (GIO) `.goutputstream-XXXXXX`; vim `.NAME.swp`/`.swx`… and its write test `4913` (then
    ///   4913 + 123·n); emacs `#NAME#` and `.#NAME`; nano `NAME.save`; backups `NAME~` and `NAME.~1~`; `*.tmp`.
    /// Dotfiles are ignored anyway; the list names them so that it says what each editor leaves.
    static let editorTemporaryPatterns = [
        "*___jb_tmp___", "*___jb_old___", "*___jb_bak___", "*.vsctmp", "*.crswap", "*.kate-swp",
        ".goutputstream-*", "*.swp", "*.swx", "*.swo", "#*#", ".#*", "*~", "*.save", "*.tmp",
    ]

    static func isEditorTemporary(_ name: String) -> Bool {
        if matches(name, patterns: editorTemporaryPatterns) { return true }
        if let number = Int(name), number >= 4913, (number - 4913) % 123 == 0, number < 4913 + 123 * 100 {
            return true  // vim's write test: 4913, then 5036, ... while the name is taken
        }
        return isQSaveFileTemporary(name)
    }

    /// `hello.py.aB3xZ9`: QSaveFile (Kate, KWrite, other Qt editors) writes NAME.XXXXXX beside NAME and renames it
    /// over it. Six letters and digits, at least one of them a capital or a digit (a real extension such as
    /// `.backup` is left alone), after a name that has an extension itself.
    static func isQSaveFileTemporary(_ name: String) -> Bool {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count >= 3, let last = parts.last, last.utf8.count == 6, !parts[parts.count - 2].isEmpty
        else { return false }
        let isAlnum = last.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
        }
        return isAlnum && last.utf8.contains { c in (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) }
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
        if let reason = unsafeCharacter(in: name) {
            throw BerthError.invalidArgument("pickup cannot deploy upload \(BerthError.quote(name)): \(reason)")
        }
        if isIgnored(name) {
            throw BerthError.invalidArgument(
                "pickup cannot deploy upload \(BerthError.quote(name)): that name is one pickup ignores (an editor's "
                    + "temporary, a dotfile or a marker)")
        }
    }

    /// Why a name would deceive where it ends up (logs, listings, terminals, command lines), or nil: control
    /// characters (newline, tab, escape sequences), bidirectional overrides and isolates (the name shown is not
    /// the name), zero-width and other invisible characters, and a leading `-` (an option to the tools that list it).
    static func unsafeCharacter(in name: String) -> String? {
        if name.hasPrefix("-") { return "a name must not start with \"-\" (tools would read it as an option)" }
        for scalar in name.unicodeScalars {
            let v = scalar.value
            let digits = String(v, radix: 16, uppercase: true)
            let hex = "U+" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits
            if v < 0x20 || (0x7F...0x9F).contains(v) {
                return "the name holds the control character \(hex) (newline, tab or escape sequences are not names)"
            }
            if (0x202A...0x202E).contains(v) || (0x2066...0x2069).contains(v) || v == 0x200E || v == 0x200F
                || v == 0x061C
            {
                return "the name holds the bidirectional control \(hex) (the name shown would not be the name)"
            }
            if (0x200B...0x200D).contains(v) || v == 0x2060 || v == 0xFEFF || v == 0x00AD || v == 0x180E
                || (0xFFF9...0xFFFB).contains(v) || (0xE0000...0xE007F).contains(v)
            {
                return "the name holds the invisible character \(hex)"
            }
        }
        return nil
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
