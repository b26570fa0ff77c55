import BerthKit
import BerthTestSupport
import Foundation
import Testing

@testable import InstancesPlugin

/// New, Start, Stop, Destroy, the records and the running state across a daemon restart, and the named errors.
@Suite(.serialized) struct InstancesLifecycleTests {
    @Test func idFormatAndUniquenessUnderAThousandCreations() async throws {
        try await TestEnvironment.with { env in
            try await InstancesTest.start(env)
            let c = try env.connect()
            var ids = Set<String>()
            let pattern = try Regex("^web-[A-Za-z0-9]{6}$")
            for n in 0..<1000 {
                let id = try await InstancesTest.new(c, n % 10 == 0 ? "{}" : "{\"application_name\": \"web\"}")
                #expect(
                    n % 10 == 0
                        ? id.count == 6 && id.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) }
                        : id.wholeMatch(of: pattern) != nil, "\(id)")
                ids.insert(id)
            }
            #expect(ids.count == 1000)
            let folders = try FileManager.default.contentsOfDirectory(atPath: env.stateHome + "/berth/instances")
            #expect(folders.filter { ids.contains($0) }.count == 1000)
            #expect(try await InstancesTest.list(c).count == 1000)
        }
    }

    @Test func badInputsAreNamedErrors() async throws {
        try await TestEnvironment.with { env in
            try await InstancesTest.start(env)
            let c = try env.connect()
            func error(_ json: String) async -> DBusError? {
                do { _ = try await InstancesTest.new(c, json) } catch let e as DBusError { return e } catch {
                    return nil
                }
                return nil
            }
            let invalid = await error("{\"application_name\": ")
            #expect(invalid?.name == "org.berth.Berth1.Error.InvalidArgument", "\(String(describing: invalid))")
            #expect(invalid?.message.contains("not valid JSON") == true)
            let unknown = await error("{\"application_name\": \"web\", \"colour\": \"red\"}")
            #expect(unknown?.name == "org.berth.Berth1.Error.InvalidArgument")
            #expect(unknown?.message.contains("\"colour\"") == true, "\(String(describing: unknown))")
            for bad in ["a/b", "..", "x..y"] {
                let e = await error("{\"application_name\": \"\(bad)\"}")
                #expect(e?.name == "org.berth.Berth1.Error.InvalidArgument", "\(bad): \(String(describing: e))")
                #expect(e?.message.contains("\"\(bad)\"") == true)
            }
            let badHealth = await error("{\"health\": \"ping\"}")
            #expect(badHealth?.name == "org.berth.Berth1.Error.InvalidArgument")
            for member in ["Start", "Stop", "Destroy"] {
                do {
                    _ = try await InstancesTest.call(c, member, [.string("web-nope00")])
                    Issue.record("\(member) of a missing id succeeded")
                } catch let e as DBusError {
                    #expect(e.name == "org.berth.Berth1.Error.NotFound" && e.message.contains("\"web-nope00\""), "\(e)")
                }
            }
            // A missing, then a non-executable server: a clear error on Start, not a crash loop.
            let id = try await InstancesTest.new(c, "{\"application_name\": \"web\"}")
            do {
                _ = try await InstancesTest.call(c, "Start", [.string(id)])
                Issue.record("Start without a server succeeded")
            } catch let e as DBusError {
                #expect(e.name == "org.berth.Berth1.Error.Failed" && e.message.contains("does not exist"), "\(e)")
            }
            try FileSystem.writeAtomically(
                env.stateHome + "/berth/instances/\(id)/server", text: "#!/bin/sh\n", mode: 0o644)
            do {
                _ = try await InstancesTest.call(c, "Start", [.string(id)])
                Issue.record("Start with a non-executable server succeeded")
            } catch let e as DBusError {
                #expect(e.message.contains("not an executable"), "\(e)")
            }
            let deploy = try? await InstancesTest.call(
                c, "Deploy", [.string("web"), .string("/nonexistent"), .vardict([])])
            #expect(deploy == nil)
        }
    }

    @Test func startStopDestroyAndRunningStateSurvivesRestart() async throws {
        try await TestEnvironment.with { env in
            let daemon = try await InstancesTest.start(env)
            let c = try env.connect()
            let id = try await InstancesTest.new(
                c,
                "{\"application_name\": \"web\", \"env\": {\"GREETING\": \"hi\"}, \"services\": [{\"type\": \"listen\", \"name\": \"web\"}, {\"type\": \"var-folder\", \"name\": \"tmp\"}, {\"type\": \"persistent-folder\", \"name\": \"data\"}]}"
            )
            let root = env.stateHome + "/berth/instances"
            try InstancesTest.writeServer("\(root)/\(id)/server", version: "v1")
            let port = Int(try await InstancesTest.property(c, id, "Port").int64 ?? 0)
            #expect(port > 0)
            let appcfg = try String(contentsOfFile: "\(root)/var/run/\(id)/appcfg.json", encoding: .utf8)
            #expect(appcfg.contains("\"PORT\": \(port)") && appcfg.contains("var/data/web/data"), "\(appcfg)")
            #expect(try await InstancesTest.property(c, id, "State") == .string("created"))
            let started = try await InstancesTest.runJob(c, "Start", [.string(id)])
            #expect(started.result == "done", "\(started)")
            let pid = try await InstancesTest.property(c, id, "MainPID").uint32 ?? 0
            #expect(pid > 0)
            try await waitUntil("the app answers") { InstancesTest.get(port: port)?.body == "v1" }
            // The app's output reaches the log through berthd's log pipe, so it may land just after the app answers.
            try await waitUntil("the app's first line is in its log") {
                let log = (try? String(contentsOfFile: "\(root)/var/log/\(id).log", encoding: .utf8)) ?? ""
                return log.contains("serving v1 on \(port)") && log.contains("appcfg.json")
            }

            // A restart of the daemon: the running instance starts again.
            daemon.signal(SIGTERM)
            _ = try await daemon.waitForExit()
            #expect(!InstancesTest.isAlive(Int32(pid)))
            try await env.startDaemon()
            let c2 = try env.connect()
            try await waitUntil("the instance runs again") {
                (try? await InstancesTest.property(c2, id, "State")) == .string("running")
            }
            try await waitUntil("the app answers again") { InstancesTest.get(port: port)?.body == "v1" }

            #expect(try await InstancesTest.runJob(c2, "Stop", [.string(id)]).result == "done")
            #expect(try await InstancesTest.property(c2, id, "State") == .string("stopped"))
            #expect(try await InstancesTest.runJob(c2, "Start", [.string(id)]).result == "done")
            let destroyed = try await InstancesTest.runJob(c2, "Destroy", [.string(id)])
            #expect(destroyed.result == "done")
            #expect(!FileManager.default.fileExists(atPath: "\(root)/\(id)"))
            #expect(!FileManager.default.fileExists(atPath: "\(root)/var/instances/\(id).json"))
            #expect(try await InstancesTest.list(c2).isEmpty)
            #expect(FileManager.default.fileExists(atPath: "\(root)/var/data/web/data"))
        }
    }

    @Test func reopenLogsAfterRotation() async throws {
        try await TestEnvironment.with { env in
            let daemon = try await InstancesTest.start(env)
            let c = try env.connect()
            let id = try await InstancesTest.new(c, "{\"application_name\": \"log\"}")
            let root = env.stateHome + "/berth/instances"
            try FileSystem.writeAtomically(
                "\(root)/\(id)/server", text: "#!/bin/sh\ntrap 'echo usr1' USR1\nwhile :; do sleep 0.05; done\n",
                mode: 0o755)
            #expect(try await InstancesTest.runJob(c, "Start", [.string(id)]).result == "done")
            let logPath = "\(root)/var/log/\(id).log"
            try FileManager.default.moveItem(atPath: logPath, toPath: logPath + ".old")
            _ = try await InstancesTest.call(c, "ReopenLogs")
            #expect(FileManager.default.fileExists(atPath: logPath))
            try FileManager.default.removeItem(atPath: logPath)
            daemon.signal(SIGUSR2)
            do {
                try await waitUntil("SIGUSR2 reopens the log") { FileManager.default.fileExists(atPath: logPath) }
            } catch {
                Issue.record("\(error); daemon running: \(daemon.isRunning)\n\(daemon.log)")
            }
        }
    }

    @Test func logsRotateBySizeKeepingN() async throws {
        try await TestEnvironment.with { env in
            let text = InstancesTest.config(env, extra: "  log_max_bytes: 4K\n  log_keep: 2")
            try await InstancesTest.start(env, config: text)
            let c = try env.connect()
            let id = try await InstancesTest.new(c, "{\"application_name\": \"chatty\"}")
            let root = env.stateHome + "/berth/instances"
            try FileSystem.writeAtomically(
                "\(root)/\(id)/server",
                text: "#!/bin/sh\nwhile :; do echo 0123456789012345678901234567890123456789; sleep 0.001; done\n",
                mode: 0o755)
            #expect(try await InstancesTest.runJob(c, "Start", [.string(id)]).result == "done")
            let log = "\(root)/var/log/\(id).log"
            try await waitUntil("two rotations") { FileManager.default.fileExists(atPath: log + ".2") }
            try await Task.sleep(for: .milliseconds(300))
            #expect(!FileManager.default.fileExists(atPath: log + ".3"))
            let size = (try FileManager.default.attributesOfItem(atPath: log + ".1")[.size] as? Int) ?? 0
            #expect(size > 0 && size <= 8192, "\(size)")
            #expect(try await InstancesTest.runJob(c, "Destroy", [.string(id)]).result == "done")
            #expect(!FileManager.default.fileExists(atPath: log + ".1"))
        }
    }

    @Test func instanceStateChangesEmitPropertiesChanged() async throws {
        try await TestEnvironment.with { env in
            try await InstancesTest.start(env)
            let c = try env.connect()
            let id = try await InstancesTest.new(c, "{\"application_name\": \"web\"}")
            try FileSystem.writeAtomically(
                env.stateHome + "/berth/instances/\(id)/server", text: "#!/bin/sh\nexec sleep 1000\n", mode: 0o755)
            let stream = try await c.signals(
                sender: "org.berth.Berth1", path: InstancesTest.instancePath(id), member: "PropertiesChanged")
            #expect(try await InstancesTest.runJob(c, "Start", [.string(id)]).result == "done")
            var seen: [String: DBusValue] = [:]
            for await s in stream {
                for (key, value) in s.arguments[1].stringKeyed ?? [:] { seen[key] = value.unwrapped }
                if seen["State"] == .string("running"), (seen["MainPID"]?.uint32 ?? 0) > 0 { break }
            }
            #expect(seen["State"] == .string("running"))
        }
    }

    @Test func thePluginIsAnInstanceDeployingPeer() {
        #expect((InstancesPlugin() as Any) is any InstanceDeploying)
    }

    @Test func unitHealthAndTemplates() throws {
        #expect(try HealthSpec.parseCheck("http:healthz", what: "h") == .http(path: "/healthz"))
        #expect(try HealthSpec.parseCheck("exec:true", what: "h") == .exec(command: "true"))
        #expect(throws: BerthError.self) { try HealthSpec.parseCheck("udp", what: "h") }
        #expect("a {{app}} {{ port }} {{x".replacingPlaceholders(["app": "web", "port": "1"]) == "a web 1 {{x")
        #expect(InstanceNames.isWellFormed("web-aB3xY9") && InstanceNames.isWellFormed("aB3xY9"))
        #expect(!InstanceNames.isWellFormed("web-aB3x") && !InstanceNames.isWellFormed("../-aB3xY9"))
        #expect(throws: BerthError.self) {
            try InstancesSettings.parse(YAMLParser.parse("instances: {colour: 1}", file: "t")?["instances"])
        }
    }
}
