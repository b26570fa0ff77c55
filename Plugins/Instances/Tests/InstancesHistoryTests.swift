import BerthKit
import BerthTestSupport
import Foundation
import Synchronization
import Testing

/// The history of what served (Rollback, keep), the health check a Rollback uses, the destroy of the instance that
/// serves, Switch (sarge's rolling steps by hand), and job names that say what they work on. Real instances (python3
/// servers), a real nginx in front where the front end matters.
@Suite(.serialized) struct InstancesHistoryTests {
    static func deploy(_ c: BusConnection, _ source: String, _ options: [(String, DBusValue)] = []) async throws
        -> InstancesTest.JobOutcome
    {
        try await InstancesTest.runJob(c, "Deploy", [.string("web"), .string(source), .vardict(options)])
    }

    static func served(_ env: TestEnvironment) -> String? {
        guard let port = try? InstancesDeployTests.port(env, "web") else { return nil }
        return InstancesTest.get(port: port)?.body
    }

    /// keep: 1 — deploy v1, deploy v2, rollback (v1 serves), deploy v4: v1 (which served before v4) is kept and
    /// v2 destroyed; the next rollback serves v1 again.
    @Test func rollbackReturnsToWhatServedBefore() async throws {
        try await TestEnvironment.with { env in
            try await InstancesTest.start(env)
            let c = try env.connect()
            let keep = [("keep", DBusValue.uint32(1))]
            #expect(try await Self.deploy(c, try InstancesTest.app(env, version: "v1"), keep).result == "done")
            let v1 = try #require(InstancesDeployTests.current(env, "web"))
            #expect(try await Self.deploy(c, try InstancesTest.app(env, version: "v2"), keep).result == "done")
            let v2 = try #require(InstancesDeployTests.current(env, "web"))
            let back = try await InstancesTest.runJob(c, "Rollback", [.string("web")])
            #expect(back.result == "done", "\(back)")
            #expect(InstancesDeployTests.current(env, "web") == v1 && Self.served(env) == "v1")
            #expect(try await Self.deploy(c, try InstancesTest.app(env, version: "v4"), keep).result == "done")
            #expect(Self.served(env) == "v4")
            let ids = try await InstancesTest.list(c).map { $0[0] }
            #expect(ids.contains(v1) && !ids.contains(v2), "v1 \(v1), v2 \(v2): \(ids)")
            let again = try await InstancesTest.runJob(c, "Rollback", [.string("web")])
            #expect(again.result == "done", "\(again)")
            #expect(InstancesDeployTests.current(env, "web") == v1, "\(ids)")
            #expect(Self.served(env) == "v1")
        }
    }

    /// A Rollback checks the instance with the health check its deploy used (here http:/healthz over a plugin
    /// default of tcp): an instance that accepts connections but answers 500 on /healthz is not switched to.
    @Test func rollbackUsesTheDeploysHealthCheck() async throws {
        try await TestEnvironment.with { env in
            let text = InstancesTest.config(env).replacingOccurrences(
                of: "check: \"http:/healthz\"", with: "check: tcp")
            try await InstancesTest.start(env, config: text)
            let c = try env.connect()
            let http = [("health", DBusValue.string("http:/healthz")), ("keep", .uint32(1))]
            #expect(try await Self.deploy(c, try InstancesTest.app(env, version: "v1"), http).result == "done")
            let v1 = try #require(InstancesDeployTests.current(env, "web"))
            #expect(try await Self.deploy(c, try InstancesTest.app(env, version: "v2"), http).result == "done")
            let v2 = try #require(InstancesDeployTests.current(env, "web"))
            // v1, stopped, now answers 500 on /healthz (as a release whose database went away would).
            let folder = try #require(try await InstancesTest.property(c, v1, "Folder").string)
            try InstancesTest.writeServer(folder + "/server", version: "v1", healthy: false)
            let back = try await InstancesTest.runJob(
                c, "Rollback", [.string("web")], timeout: .seconds(40))
            #expect(back.result == "failed", "\(back)")
            #expect(back.logs.contains { $0.contains("health check http:/healthz") }, "\(back.logs)")
            #expect(InstancesDeployTests.current(env, "web") == v2 && Self.served(env) == "v2")
        }
    }

    /// Destroy of the instance that serves is Busy; forced, the front end (a real nginx) goes to another running
    /// instance first, and with none left it says that nothing serves.
    @Test func destroyOfTheServingInstanceIsBusyUnlessForced() async throws {
        try await TestEnvironment.with { env in
            let nginx = try await PrivateNginx.start(env)
            defer { nginx.stop() }
            try await InstancesTest.start(env, config: InstancesTest.config(env, reload: nginx.reload))
            let c = try env.connect()
            #expect(try await Self.deploy(c, try InstancesTest.app(env, version: "v1")).result == "done")
            let v1 = try #require(InstancesDeployTests.current(env, "web"))
            try await nginx.waitServes("v1")
            for (path, iface, args) in [
                (InstancesTest.path, InstancesTest.iface, [DBusValue.string(v1)]),
                (InstancesTest.instancePath(v1), "org.berth.Berth1.Instance", []),
            ] {
                do {
                    _ = try await InstancesTest.call(c, "Destroy", args, path: path, iface: iface)
                    Issue.record("Destroy of the serving instance was accepted")
                } catch let error as DBusError {
                    #expect(error.name == "org.berth.Berth1.Error.Busy" && error.message.contains(v1), "\(error)")
                }
            }
            let refused = try await env.berthctl(["instances", "destroy", v1])
            #expect(refused.status != 0 && refused.stderr.contains("--force"), "\(refused)")
            try await nginx.waitServes("v1")

            // A second instance, made and started by hand: the forced destroy switches the front end to it.
            let other = try await Self.startByHand(c, env, version: "v1b")
            let forced = try await env.berthctl(["instances", "destroy", "--force", v1])
            #expect(forced.status == 0, "\(forced)")
            #expect(forced.stdout.contains("now points at \(other)"), "\(forced)")
            #expect(InstancesDeployTests.current(env, "web") == other)
            try await nginx.waitServes("v1b")
            // The last one: nothing serves, and it is said.
            let last = try await InstancesTest.runJob(c, "ForceDestroy", [.string(other)])
            #expect(last.result == "done", "\(last)")
            #expect(last.logs.contains { $0.contains("nothing serves application \"web\"") }, "\(last.logs)")
            #expect(InstancesDeployTests.current(env, "web") == nil)
        }
    }

    /// sarge's rolling steps by hand: New, install, Start, then Switch checks its health and points the front end
    /// (a real nginx) at it; the old one keeps running until stopped. berthctl instances switch does the same.
    @Test func switchPointsTheFrontEndAtAnInstanceStartedByHand() async throws {
        try await TestEnvironment.with { env in
            let nginx = try await PrivateNginx.start(env)
            defer { nginx.stop() }
            try await InstancesTest.start(env, config: InstancesTest.config(env, reload: nginx.reload))
            let c = try env.connect()
            let jobs = try await c.signals(sender: "org.berth.Berth1", member: "JobNew")
            let names = Mutex<[String]>([])
            let collector = Task {
                for await s in jobs { names.withLock { $0.append(s.arguments[3].string ?? "") } }
            }
            defer { collector.cancel() }
            #expect(try await Self.deploy(c, try InstancesTest.app(env, version: "v1")).result == "done")
            let v1 = try #require(InstancesDeployTests.current(env, "web"))
            let v2 = try await Self.startByHand(c, env, version: "v2")
            let switched = try await InstancesTest.runJob(c, "Switch", [.string(v2)])
            #expect(switched.result == "done", "\(switched)")
            #expect(InstancesDeployTests.current(env, "web") == v2)
            try await nginx.waitServes("v2")
            #expect(try await InstancesTest.property(c, v1, "State") == .string("running"))
            // Switch back with berthctl.
            let back = try await env.berthctl(["instances", "switch", v1])
            #expect(back.status == 0, "\(back)")
            try await nginx.waitServes("v1")
            // An instance that does not run, or one that serves already, is refused before any job.
            _ = try await InstancesTest.runJob(c, "Stop", [.string(v2)])
            do {
                _ = try await InstancesTest.call(c, "Switch", [.string(v2)])
                Issue.record("Switch to a stopped instance was accepted")
            } catch let error as DBusError {
                #expect(error.message.contains("not running"), "\(error)")
            }
            await #expect(throws: DBusError.self) { _ = try await InstancesTest.call(c, "Switch", [.string(v1)]) }
            // Each job named the application and the instance.
            try await waitUntil("the JobNew signals arrived") { names.withLock { $0.count } >= 5 }
            let seen = names.withLock { $0 }
            #expect(seen.contains { $0.hasPrefix("deploy web as web-") && $0.contains(v1) }, "\(seen)")
            #expect(seen.contains("start \(v2) (web)"), "\(seen)")
            #expect(seen.contains("switch web to \(v2)") && seen.contains("switch web to \(v1)"), "\(seen)")
            #expect(seen.contains("stop \(v2) (web)"), "\(seen)")
        }
    }

    /// New + server installed + Start, as sarge's users do by hand; returns the id.
    static func startByHand(_ c: BusConnection, _ env: TestEnvironment, version: String) async throws -> String {
        let id = try await InstancesTest.new(
            c, "{\"application_name\": \"web\", \"services\": [{\"type\": \"listen\", \"name\": \"web\"}]}")
        let folder = try #require(try await InstancesTest.property(c, id, "Folder").string)
        try InstancesTest.writeServer(folder + "/server", version: version)
        let started = try await InstancesTest.runJob(c, "Start", [.string(id)])
        #expect(started.result == "done", "\(started)")
        return id
    }
}
