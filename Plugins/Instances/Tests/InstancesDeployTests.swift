import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// Rolling deploys: success, a failing health check, Busy, rollback, a tarball, and kill -9 half-way.
@Suite(.serialized) struct InstancesDeployTests {
    static func current(_ env: TestEnvironment, _ app: String) -> String? {
        (try? FileManager.default.destinationOfSymbolicLink(
            atPath: env.stateHome + "/berth/instances/var/current/" + app))
            .map { ($0 as NSString).lastPathComponent }
    }

    static func port(_ env: TestEnvironment, _ app: String) throws -> Int {
        let text = try String(contentsOfFile: env.root + "/frontend/\(app).conf", encoding: .utf8)
        let after = text.components(separatedBy: "127.0.0.1:")[1]
        return Int(after.prefix { $0.isNumber })!
    }

    @Test func deployFailingHealthLeavesTheOldServing() async throws {
        try await TestEnvironment.with { env in
            try await InstancesTest.start(env)
            let c = try env.connect()
            let v1 = try InstancesTest.app(env, version: "v1")
            let first = try await InstancesTest.runJob(c, "Deploy", [.string("web"), .string(v1), .vardict([])])
            #expect(first.result == "done", "\(first)")
            #expect(first.logs.contains { $0.contains("[5/7] switching the front end") }, "\(first.logs)")
            let old = try #require(Self.current(env, "web"))
            let oldPort = try Self.port(env, "web")
            #expect(InstancesTest.get(port: oldPort)?.body == "v1")
            #expect(try await InstancesTest.property(c, old, "Active") == .bool(true))

            let bad = try InstancesTest.app(env, version: "v2", healthy: false)
            let failed = try await InstancesTest.runJob(
                c, "Deploy", [.string("web"), .string(bad), .vardict([("timeout", .string("1s"))])])
            #expect(failed.result == "failed")
            #expect(failed.errorName == "org.berth.Berth1.Error.HealthCheckFailed", "\(failed)")
            #expect(failed.error.contains("answered 500"), "\(failed.error)")
            #expect(Self.current(env, "web") == old)
            #expect(try Self.port(env, "web") == oldPort)
            #expect(InstancesTest.get(port: oldPort)?.body == "v1")
            let rows = try await InstancesTest.list(c)
            #expect(rows.map { $0[0] } == [old] && rows[0][2] == "running", "\(rows)")
        }
    }

    @Test func deployReplacesKeepsForRollbackAndRefusesASecondDeploy() async throws {
        try await TestEnvironment.with { env in
            try await InstancesTest.start(env)
            let c = try env.connect()
            let v1 = try InstancesTest.app(env, version: "v1")
            #expect(
                try await InstancesTest.runJob(c, "Deploy", [.string("web"), .string(v1), .vardict([])]).result
                    == "done")
            let first = try #require(Self.current(env, "web"))

            // v2 from a tarball, keeping one old instance; a second deploy meanwhile is Busy.
            let v2 = try InstancesTest.app(env, version: "v2")
            let tarball = env.root + "/v2.tar.gz"
            let tar = try await env.run(["tar", "-czf", tarball, "-C", v2, "."])
            #expect(tar.status == 0, "\(tar)")
            let stream = try await c.signals(sender: "org.berth.Berth1", member: "JobRemoved")
            let reply = try await InstancesTest.call(
                c, "Deploy", [.string("web"), .string(tarball), .vardict([("keep", .uint32(1))])])
            do {
                _ = try await InstancesTest.call(c, "Deploy", [.string("web"), .string(v1), .vardict([])])
                Issue.record("a second deploy of web was accepted")
            } catch let e as DBusError {
                #expect(e.name == "org.berth.Berth1.Error.Busy", "\(e)")
            }
            for await s in stream where s.arguments[1].string == reply[1].string {
                #expect(s.arguments[3].string == "done")
                break
            }
            let second = try #require(Self.current(env, "web"))
            #expect(second != first)
            #expect(InstancesTest.get(port: try Self.port(env, "web"))?.body == "v2")
            #expect(try await InstancesTest.property(c, first, "State") == .string("stopped"))

            let back = try await InstancesTest.runJob(c, "Rollback", [.string("web")])
            #expect(back.result == "done", "\(back)")
            #expect(Self.current(env, "web") == first)
            #expect(InstancesTest.get(port: try Self.port(env, "web"))?.body == "v1")

            let options = DBusValue.vardict([("colour", .string("red"))])
            do {
                _ = try await InstancesTest.call(c, "Deploy", [.string("web"), .string(v1), options])
                Issue.record("an unknown option was accepted")
            } catch let e as DBusError {
                #expect(e.name == "org.berth.Berth1.Error.InvalidArgument" && e.message.contains("\"colour\""))
            }
        }
    }

    @Test func killNineHalfWayLeavesAConsistentStateAfterRestart() async throws {
        try await TestEnvironment.with { env in
            let daemon = try await InstancesTest.start(env)
            let c = try env.connect()
            let v1 = try InstancesTest.app(env, version: "v1")
            #expect(
                try await InstancesTest.runJob(c, "Deploy", [.string("web"), .string(v1), .vardict([])]).result
                    == "done")
            let old = try #require(Self.current(env, "web"))
            let oldPort = try Self.port(env, "web")

            let bad = try InstancesTest.app(env, version: "v2", healthy: false)
            let stream = try await c.signals(sender: "org.berth.Berth1", member: "Log")
            _ = try await InstancesTest.call(
                c, "Deploy", [.string("web"), .string(bad), .vardict([("timeout", .string("60s"))])])
            for await s in stream where (s.arguments.first?.string ?? "").contains("waiting for health check") { break }
            let rows = try await InstancesTest.list(c)
            let newID = try #require(rows.map { $0[0] }.first { $0 != old })
            let newPID = Int32(try await InstancesTest.property(c, newID, "MainPID").uint32 ?? 0)
            #expect(newPID > 0)
            daemon.signal(SIGKILL)
            _ = try await daemon.waitForExit()

            try await env.startDaemon()
            let c2 = try env.connect()
            try await waitUntil("the old instance runs again") {
                (try? await InstancesTest.property(c2, old, "State")) == .string("running")
            }
            #expect(try await InstancesTest.list(c2).map { $0[0] } == [old])
            #expect(!FileManager.default.fileExists(atPath: env.stateHome + "/berth/instances/\(newID)"))
            #expect(
                !FileManager.default.fileExists(atPath: env.stateHome + "/berth/instances/var/instances/\(newID).json"))
            try await waitUntil("the new instance's process is gone") { !InstancesTest.isAlive(newPID) }
            #expect(Self.current(env, "web") == old)
            #expect(try Self.port(env, "web") == oldPort)
            try await waitUntil("the old version serves") { InstancesTest.get(port: oldPort)?.body == "v1" }
        }
    }

    @Test func berthctlNewListDeployAndRollback() async throws {
        try await TestEnvironment.with { env in
            try await InstancesTest.start(env)
            let new = try await env.berthctl(["instances", "new", "{\"application_name\": \"web\"}"])
            #expect(new.status == 0, "\(new)")
            #expect(new.stdout.wholeMatch(of: try Regex("web-[A-Za-z0-9]{6}\n")) != nil, "\(new.stdout)")
            let v1 = try InstancesTest.app(env, version: "v1")
            let deploy = try await env.berthctl([
                "instances", "deploy", "api", v1, "--health", "http:/healthz", "--keep", "1",
            ])
            #expect(deploy.status == 0, "\(deploy)")
            #expect(deploy.stdout.contains("[7/7] deployed"), "\(deploy.stdout)")
            let list = try await env.berthctl(["instances", "list"])
            #expect(list.stdout.contains("api") && list.stdout.contains("running"), "\(list)")
            // --json carries each instance's folder (where its server and config are).
            let json = try await env.berthctl(["instances", "list", "--json"])
            let id0 = String(new.stdout.dropLast())
            #expect(json.stdout.contains("\"id\":\"\(id0)\"") && json.stdout.contains("\"folder\":\"/"), "\(json)")
            let rollback = try await env.berthctl(["instances", "rollback", "api"])
            #expect(rollback.status != 0 && rollback.stderr.contains("no earlier release to roll back to"), "\(rollback)")
            let missing = try await env.berthctl(["instances", "start", "web-zzzzzz"])
            #expect(missing.status != 0 && missing.stderr.contains("\"web-zzzzzz\" does not exist"), "\(missing)")
            let id = String(new.stdout.dropLast())
            let logs = try await env.berthctl(["instances", "logs", id])
            #expect(logs.status == 0, "\(logs)")
        }
    }

    @Test func introspectionXMLMatches() async throws {
        try await TestEnvironment.with { env in
            try await InstancesTest.start(env)
            let c = try env.connect()
            let id = try await InstancesTest.new(c, "{\"application_name\": \"web\"}")
            for (path, interface) in [
                (InstancesTest.path, "org.berth.Berth1.Instances"),
                (InstancesTest.instancePath(id), "org.berth.Berth1.Instance"),
            ] {
                let (file, live) = try await IntrospectionXML.compare(env, path: path, interface: interface)
                #expect(
                    file == live,
                    "dbus/\(interface).xml differs from live introspection; regenerate with BERTH_UPDATE_DBUS_XML=1")
            }
        }
    }
}
