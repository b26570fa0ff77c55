import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// The delegated-cgroup path, outside systemd: a cgroup v2 folder made for the test stands for berthd's delegated
/// cgroup (`BERTH_CGROUP`; under systemd, `Delegate=yes` and the `trusted.delegate`/`user.delegate` mark; the
/// booted check in packaging/boot-check proves that part). A descendant that leaves the process group AND clears
/// its environment (no marker) is still listed, stopped, and killed after a `kill -9` of berthd.
@Suite(.serialized) struct ServicesCgroupTests {
    /// The cgroup2 mount point, from /proc/self/mountinfo.
    static var unifiedMount: String? {
        guard let text = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") {
            guard let dash = line.range(of: " - "), line[dash.upperBound...].hasPrefix("cgroup2 ") else { continue }
            let fields = line[..<dash.lowerBound].split(separator: " ")
            if fields.count > 4 { return String(fields[4]) }
        }
        return nil
    }

    static var available: Bool { getuid() == 0 && unifiedMount != nil }

    /// A delegated-like cgroup for one test, removed afterwards (with whatever is left in it killed).
    static func withCgroup(_ body: (String) async throws -> Void) async throws {
        let folder = unifiedMount! + "/berth-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        defer {
            for child in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] {
                let sub = folder + "/" + child
                guard FileManager.default.fileExists(atPath: sub + "/cgroup.procs") else { continue }
                try? "1".write(toFile: sub + "/cgroup.kill", atomically: false, encoding: .utf8)
                usleep(100_000)
                rmdir(sub)
            }
            rmdir(folder)
        }
        try await body(folder)
    }

    static func members(_ folder: String) -> [Int32] {
        ((try? String(contentsOfFile: folder + "/cgroup.procs", encoding: .utf8)) ?? "").split(separator: "\n")
            .compactMap { Int32($0) }
    }

    static func start(_ env: TestEnvironment, cgroup: String) async throws -> ServicesWorld {
        let daemon = try await env.startDaemon(environment: ["BERTH_CGROUP": cgroup])
        return ServicesWorld(env: env, client: try env.connect(), daemon: daemon)
    }

    static func setup(_ env: TestEnvironment, autolaunch: Bool) throws {
        try env.installPlugins(["libServicesPlugin.so"])
        // env -i: the escaped pair carries no marker; only the cgroup holds it.
        let script = try writeScript(
            env, "hide.sh", "#!/bin/sh\nenv -i /usr/bin/setsid /bin/sh -c 'sleep 320 & wait' &\nexec sleep 321\n")
        try env.writeConfig(
            "services:\n" + (autolaunch ? "  autolaunch: [hide]\n" : "")
                + "  units:\n    hide: { exec: [\(script)], stop_timeout: 2s }\n")
    }

    @Test(.enabled(if: available, "needs root and a cgroup2 mount"))
    func eachServiceRunsInItsOwnCgroupAndStopEmptiesIt() async throws {
        try await Self.withCgroup { cgroup in
            try await TestEnvironment.with { env in
                try Self.setup(env, autolaunch: false)
                let world = try await Self.start(env, cgroup: cgroup)
                #expect(try await world.job("Start", "hide") == "done")
                let unitGroup = cgroup + "/services.hide"
                try await waitUntil("the hidden pair runs in the unit's cgroup") { Self.members(unitGroup).count == 3 }
                let members = Self.members(unitGroup)
                #expect(members.contains(try await world.mainPID("hide")))
                try await waitUntil("Processes lists the cgroup's members") {
                    Set((try await world.property("hide", "Processes").items ?? []).map {
                        Int32($0.items?[0].uint32 ?? 0)
                    }) == Set(members)
                }
                #expect(try await world.job("Stop", "hide") == "done")
                for pid in members { #expect(!isAlive(pid), "pid \(pid) survived Stop") }
                #expect(!FileManager.default.fileExists(atPath: unitGroup), "the empty cgroup is removed")
            }
        }
    }

    @Test(.enabled(if: available, "needs root and a cgroup2 mount"))
    func killNineOfBerthdThenARestartKillsWhatTheCgroupHolds() async throws {
        try await Self.withCgroup { cgroup in
            try await TestEnvironment.with { env in
                try Self.setup(env, autolaunch: true)
                let world = try await Self.start(env, cgroup: cgroup)
                let unitGroup = cgroup + "/services.hide"
                try await world.waitForState("hide", "active")
                try await waitUntil("the hidden pair runs") { Self.members(unitGroup).count == 3 }
                let old = Self.members(unitGroup)
                world.daemon.signal(SIGKILL)
                _ = try await world.daemon.waitForExit()
                // The main process died with berthd (PDEATHSIG); the hidden pair is only in the cgroup.
                try await waitUntil("only the hidden pair is left") { Self.members(unitGroup).count == 2 }
                let next = try await Self.start(env, cgroup: cgroup)
                try await next.waitForState("hide", "active")
                try await waitUntil("the old members are gone") { Set(Self.members(unitGroup)).isDisjoint(with: old) }
                for pid in old { #expect(!isAlive(pid), "pid \(pid) survived the restart") }
            }
        }
    }
}
