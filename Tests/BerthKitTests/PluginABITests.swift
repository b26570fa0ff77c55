import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// The plugin ABI key must change whenever BerthKit's public API changes: a stale plugin whose key was not bumped
/// crashes the host. Plugins/BerthKit/ABI.lock records the API revision and a hash of every public declaration
/// line; this test fails until both are updated together.
@Suite struct PluginABITests {
    static let lock = IntrospectionXML.repositoryRoot + "/Plugins/BerthKit/ABI.lock"

    /// sha256 of BerthKit's public declaration lines (whitespace-normalised), file by file in path order.
    static func publicAPIHash() async throws -> String {
        let sources = IntrospectionXML.repositoryRoot + "/Plugins/BerthKit/Sources/BerthKit"
        let script = """
            cd '\(sources)' && find . -name '*.swift' | LC_ALL=C sort | while read -r f; do
              echo "== $f"; grep -E '^\\s*(@inlinable\\s+)?(public|open)\\s' "$f" | sed -E 's/\\s+/ /g; s/^ //'
            done | sha256sum | cut -d' ' -f1
            """
        let r = try await Command.run(["sh", "-c", script])
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func abiKeyIsBumpedWithThePublicAPI() async throws {
        let hash = try await Self.publicAPIHash()
        let revision = try #require(PluginABI.keyString.split(separator: " ").last.map(String.init))
        let expected = "api \(revision) \(hash)\n"
        if ProcessInfo.processInfo.environment["BERTH_UPDATE_ABI_LOCK"] == "1" {
            try FileSystem.writeAtomically(Self.lock, text: expected)
        }
        let recorded = (try? FileSystem.readText(Self.lock)) ?? ""
        #expect(
            recorded == expected,
            """
            BerthKit's public API (or the ABI key) changed: ABI.lock says \(recorded.debugDescription), the sources give \
            \(expected.debugDescription). If the public API changed, bump the api revision in PluginABI.key, then run the \
            tests once with BERTH_UPDATE_ABI_LOCK=1.
            """)
    }

    @Test func keyIsTheHostsOwn() {
        #expect(PluginABI.keyString.hasPrefix("berthkit \(BerthVersion.string.split(separator: ".").prefix(2).joined(separator: ".")) api "))
    }
}
