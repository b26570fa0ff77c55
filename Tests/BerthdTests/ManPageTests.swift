import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// berthctl(1) names every command berthctl has: the command tree comes from berthctl itself
/// (`--experimental-dump-help`), so a new command without its line in the man page fails here.
@Suite struct ManPageTests {
    /// Every leaf command as its words (`["services", "start"]`).
    static func commands(_ node: [String: Any], _ path: [String] = []) -> [[String]] {
        let subcommands = (node["subcommands"] as? [[String: Any]] ?? []).filter { ($0["commandName"] as? String) != "help" }
        if subcommands.isEmpty { return path.isEmpty ? [] : [path] }
        return subcommands.flatMap { commands($0, path + [$0["commandName"] as? String ?? "?"]) }
    }

    /// The man page's `.B` lines as words: font escapes dropped, `\-` read as `-`, `|` and brackets as spaces.
    static func headings(_ roff: String) -> [[String]] {
        roff.split(separator: "\n").filter { $0.hasPrefix(".B ") }.map { line in
            var text = String(line.dropFirst(3)).replacingOccurrences(of: "\\-", with: "-")
            for font in ["\\fB", "\\fR", "\\fI", "\\fP"] { text = text.replacingOccurrences(of: font, with: " ") }
            for mark in ["|", "[", "]"] { text = text.replacingOccurrences(of: mark, with: " ") }
            return text.split(separator: " ").map(String.init)
        }
    }

    /// `words` appear in `line` in this order (`services start|stop|restart NAME` holds `services stop`).
    static func mentions(_ line: [String], _ words: [String]) -> Bool {
        var rest = line[...]
        for word in words {
            guard let i = rest.firstIndex(of: word) else { return false }
            rest = rest[(i + 1)...]
        }
        return true
    }

    @Test func berthctlManPageNamesEveryCommand() async throws {
        let dump = try await Command.run([TestEnvironment.buildDir + "/berthctl", "--experimental-dump-help"])
        try #require(dump.status == 0, "\(dump)")
        let json = try #require(
            try JSONSerialization.jsonObject(with: Data(dump.stdout.utf8)) as? [String: Any])
        let tree = try #require(json["command"] as? [String: Any])
        let all = Self.commands(tree)
        #expect(all.count > 40, "\(all)")
        let page = try #require(try FileSystem.readText(IntrospectionXML.repositoryRoot + "/packaging/man/berthctl.1"))
        let lines = Self.headings(page)
        let missing = all.filter { words in !lines.contains { Self.mentions($0, words) } }
        #expect(missing.isEmpty, "packaging/man/berthctl.1 has no .B line for: \(missing.map { $0.joined(separator: " ") })")
    }
}
