import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// Locks owned by bus clients, the kill -9 story, and the checked-in introspection XML.
@Suite struct ServicesLockAndCrashTests {
    @Test func lockIsReleasedWhenTheLockingClientDisconnects() async throws {
        try await TestEnvironment.with { env in
            let world = try await ServicesWorld.start(
                env, config: "services:\n  units:\n    scope: { exec: [sleep, \"300\"] }\n")
            let locker = try ChildProcess.spawn(
                [TestEnvironment.buildDir + "/berthctl", "services", "lock", "scope"], environment: env.environment,
                stdout: env.root + "/lock.out", stderr: env.root + "/lock.err")
            defer { locker.terminate() }
            try await waitUntil("berthctl holds the lock") {
                try await world.property("scope", "LockedBy").string?.isEmpty == false
            }
            let owner = try await world.property("scope", "LockedBy").string ?? ""
            // The holder as a person knows it: the program and its pid.
            let list = try await env.berthctl(["services", "list"])
            #expect(list.stdout.contains("LOCKED BY") && list.stdout.contains("berthctl (pid \(locker.pid), \(owner))"), "\(list)")
            let json = try await env.berthctl(["services", "list", "--json"])
            #expect(json.stdout.contains("\"locked_by_program\":\"berthctl\",\"locked_by_pid\":\(locker.pid)"), "\(json)")
            let start = try await env.busctl([
                "call", "org.berth.Berth1", ServicesWorld.root, ServicesWorld.services, "Start", "s", "scope",
            ])
            // The daemon's errors name the holder the same way, not only by its bus name.
            #expect(
                start.status != 0 && start.stderr.contains("locked by berthctl (pid \(locker.pid), \(owner))"),
                "\(start)")
            let steal = try await env.busctl([
                "call", "org.berth.Berth1", world.path("scope"), ServicesWorld.service, "Lock",
            ])
            #expect(
                steal.status != 0 && steal.stderr.contains("already locked by berthctl (pid \(locker.pid), \(owner))"),
                "\(steal)")
            let unlock = try await env.berthctl(["--verbose", "services", "unlock", "scope"])
            #expect(unlock.status != 0 && unlock.stderr.contains("Busy"), "\(unlock)")
            locker.signal(SIGINT)
            _ = try await locker.wait()
            try await waitUntil("the lock drops with the connection") {
                try await world.property("scope", "LockedBy") == .string("")
            }
            #expect(try await world.job("Start", "scope") == "done")
            // A BerthKit client locks, then its own calls pass and others' fail.
            _ = try await world.client.call("org.berth.Berth1", world.path("scope"), ServicesWorld.service, "Lock")
            #expect(try await world.job("Restart", "scope") == "done")
            let other = try await env.berthctl(["services", "stop", "scope"])
            #expect(other.status != 0 && other.stderr.contains("is locked by"), "\(other)")
        }
    }

    @Test func killNineOfBerthdLeavesNoSupervisedChildAndAdoptsNone() async throws {
        try await TestEnvironment.with { env in
            let forker = try writeScript(env, "tree.sh", "#!/bin/sh\nsleep 300 &\n(sleep 301 &)\nexec sleep 302\n")
            let config = "services:\n  autolaunch: [tree]\n  units:\n    tree: { exec: [\(forker)] }\n"
            let world = try await ServicesWorld.start(env, config: config)
            try await world.waitForState("tree", "active")
            let pgid = try await world.mainPID("tree")
            try await waitUntil("the tree is up") { processGroupMembers(pgid).count >= 3 }
            world.daemon.signal(SIGKILL)
            _ = try await world.daemon.waitForExit()
            // The main process dies with berthd (PDEATHSIG); the grandchildren are swept by the next start.
            try await waitUntil("the main process died with berthd") { !processGroupMembers(pgid).contains(pgid) }
            let next = try await ServicesWorld.start(env)
            try await waitUntil("nothing of the old group runs", timeout: .seconds(5)) {
                processGroupMembers(pgid).isEmpty
            }
            // The new daemon runs its own, new process for the service: the old one was not adopted.
            try await next.waitForState("tree", "active")
            #expect(try await next.mainPID("tree") != pgid)
        }
    }

    @Test(arguments: ["org.berth.Berth1.Services", "org.berth.Berth1.Service"])
    func checkedInXMLMatchesLiveIntrospection(interface: String) async throws {
        try await TestEnvironment.with { env in
            let world = try await ServicesWorld.start(
                env, config: "services:\n  units:\n    x: { exec: [sleep, \"1\"] }\n")
            let path = interface.hasSuffix("Services") ? ServicesWorld.root : world.path("x")
            let (file, live) = try await IntrospectionXML.compare(env, path: path, interface: interface)
            #expect(
                file == live,
                "dbus/\(interface).xml differs from live introspection; regenerate with BERTH_UPDATE_DBUS_XML=1")
        }
    }
}
