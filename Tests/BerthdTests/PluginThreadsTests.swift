import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// A stopped plugin leaves no thread behind: pickup's engine and the instances manager run on threads of their own
/// (ThreadExecutor) that exit when the plugin stops (here: disabled by a Reload).
@Suite struct PluginThreadsTests {
    static func threadNames(_ pid: Int32) -> [String] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.compactMap { task in
            (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/comm", encoding: .utf8))?
                .trimmingCharacters(in: .newlines)
        }
    }

    @Test(.timeLimit(.minutes(2))) func disabledPluginsKeepNoThread() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libPickupPlugin.so", "libInstancesPlugin.so"])
            let base = 20000 + Int.random(in: 0..<120) * 100
            let config = "instances:\n  ports: \(base)-\(base + 99)\n"
            try env.writeConfig(config)
            let daemon = try await env.startDaemon()
            let client = try env.connect()
            defer { client.close() }
            // Both plugins did work on their threads (recovery, the start-up scan).
            try await waitUntil("both plugins' threads run", timeout: .seconds(20)) {
                let names = Self.threadNames(daemon.pid)
                return names.contains("berth-pickup") && names.contains("berth-instances")
            }
            try env.writeConfig("disabled_plugins: [pickup, instances]\n" + config)
            _ = try await client.call("org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager", "Reload")
            try await waitUntil("the plugins' threads exit", timeout: .seconds(10)) {
                let names = Self.threadNames(daemon.pid)
                return !names.contains("berth-pickup") && !names.contains("berth-instances")
            }
            // And they come back when the plugins do.
            try env.writeConfig(config)
            _ = try await client.call("org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager", "Reload")
            let state = try await client.getProperty(
                "org.berth.Berth1", "/org/berth/Berth1/plugin/pickup", "org.berth.Berth1.Plugin", "State")
            #expect(state == .string("active"))
        }
    }
}
