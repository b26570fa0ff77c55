import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// No child escapes (the no-systemd path): every descendant carries the `BERTH_UNIT` marker in its environment, the
/// daemon is a child subreaper, and descendants that left the process group (`setsid`) are listed in `Processes`,
/// stopped with the service, and killed by the next daemon after a `kill -9`.
@Suite struct ServicesEscapeTests {
    /// The live (non-zombie) pids whose /proc/PID/environ holds `BERTH_UNIT=<value>`.
    static func marked(_ value: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry -> Int32? in
            guard let pid = Int32(entry),
                let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")"),
                stat[stat.index(after: close)...].split(separator: " ").first != "Z",
                let environ = FileManager.default.contents(atPath: "/proc/\(entry)/environ")
            else { return nil }
            let entries = environ.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            return entries.contains("BERTH_UNIT=" + value) ? pid : nil
        }.sorted()
    }

    /// The session of a process (field 6 of /proc/PID/stat).
    static func session(_ pid: Int32) -> Int32? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 3 ? Int32(fields[3]) : nil
    }

    static func escaper(_ env: TestEnvironment) throws -> String {
        try writeScript(env, "escape.sh", "#!/bin/sh\nsetsid sh -c 'sleep 310 & wait' &\nexec sleep 311\n")
    }

    @Test func descendantsThatLeaveTheGroupAreListedAndStopped() async throws {
        try await TestEnvironment.with { env in
            let script = try Self.escaper(env)
            let world = try await ServicesWorld.start(
                env, config: "services:\n  units:\n    esc: { exec: [\(script)], stop_timeout: 2s }\n")
            #expect(try await world.job("Start", "esc") == "done")
            let marker = env.runtimeDir + "/berth/services/esc"
            let main = try await world.mainPID("esc")
            try await waitUntil("the escaped pair runs") { Self.marked(marker).count >= 3 }
            let tree = Self.marked(marker)
            let escaped = tree.filter { Self.session($0) != Self.session(main) }
            #expect(escaped.count == 2, "setsid sh and its sleep are in a session of their own: \(tree)")
            // Processes lists them all, the main process first; MainPID stays the main process.
            // Refreshed on every state change and once a second: the main process shows once it has exec'd.
            try await waitUntil("Processes lists the whole tree, the main process after its exec") {
                let items = try await world.property("esc", "Processes").items ?? []
                return items.count == 3 && items.first?.items?[1].string == "sleep 311"
            }
            let listed = (try await world.property("esc", "Processes").items ?? []).map {
                (Int32($0.items?[0].uint32 ?? 0), $0.items?[1].string ?? "")
            }
            #expect(listed.first?.0 == main && listed.first?.1 == "sleep 311", "\(listed)")
            #expect(Set(listed.map(\.0)) == Set(tree), "\(listed) vs \(tree)")
            #expect(listed.contains { $0.1 == "sleep 310" })
            #expect(try await world.mainPID("esc") == main)
            // Stop ends the job only once the escaped processes are gone too.
            #expect(try await world.job("Stop", "esc") == "done")
            #expect(Self.marked(marker).isEmpty, "left running after Stop: \(Self.marked(marker))")
            for pid in tree { #expect(!isAlive(pid)) }
        }
    }

    @Test func killNineOfBerthdThenARestartLeavesNoEscapedDescendant() async throws {
        try await TestEnvironment.with { env in
            let script = try Self.escaper(env)
            let marker = env.runtimeDir + "/berth/services/esc"
            var world = try await ServicesWorld.start(
                env, config: "services:\n  autolaunch: [esc]\n  units:\n    esc: { exec: [\(script)] }\n")
            // Three kills in a row, as in the report (12 orphans after 3 kills): none may pile up.
            for round in 1...3 {
                try await world.waitForState("esc", "active")
                try await waitUntil("round \(round): the escaped pair runs") { Self.marked(marker).count >= 3 }
                let before = Self.marked(marker)
                world.daemon.signal(SIGKILL)
                _ = try await world.daemon.waitForExit()
                world = try await ServicesWorld.start(env)
                try await world.waitForState("esc", "active")
                try await waitUntil("round \(round): the old tree is gone") {
                    Set(Self.marked(marker)).isDisjoint(with: before)
                }
            }
            try await waitUntil("only the new tree runs") { Self.marked(marker).count == 3 }
        }
    }
}
