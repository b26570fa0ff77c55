import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// A plugin built by another toolchain (same BerthKit revision and interface, another compiler in its ABI key) is
/// refused before any Swift type crosses: `failed`/`abi-mismatch`, never loaded (its entry would trap).
@Suite struct PluginABIMismatchTests {
    @Test func aPluginBuiltByAnotherCompilerIsRefusedAsABIMismatch() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libTestFixtureOtherCompiler.so", "libTestFixtureGood.so"])
            let daemon = try await env.startDaemon()
            let (state, message) = try await PluginFailureTests.state(env, "testfixtureothercompiler")
            #expect(state == .init(state: "failed", lastError: "abi-mismatch"), "\(message)")
            // The two keys differ only in the compiler part.
            let host = PluginABI.keyString
            let parts = host.components(separatedBy: " compiler ")
            try #require(parts.count == 2, "the host's key names no compiler: \(host)")
            let base = parts[0]
            #expect(message.contains("was built against \"\(base) compiler Clang 0.0.0 (another toolchain)\""), "\(message)")
            #expect(message.contains("but this berthd has \"\(host)\""), "\(message)")
            #expect(try await PluginFailureTests.state(env, "fixture").0 == .init(state: "active", lastError: ""))
            #expect(daemon.isRunning)
        }
    }
}
