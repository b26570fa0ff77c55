import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// The Manager, Plugin and Job objects as independent clients (busctl, gdbus, dbus-send) see them.
@Suite struct ManagerBusTests {
    static let good = ["libTestFixtureGood.so"]

    @Test func managerPropertiesThroughBusctl() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(Self.good)
            let daemon = try await env.startDaemon()
            let r = try await env.busctl(["get-property", "org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager",
                "Version", "ApiVersion", "State", "Mode", "DaemonPID", "ConfigPath", "Plugins"])
            #expect(r.status == 0, "\(r)")
            let lines = r.stdout.split(separator: "\n").map(String.init)
            #expect(lines == [
                "s \"\(BerthVersion.string)\"", "u 1", "s \"running\"", "s \"session\"", "u \(daemon.pid)",
                "s \"\(env.configFile)\"", "ao 1 \"/org/berth/Berth1/plugin/fixture\"",
            ])
        }
    }

    @Test func pingAndListPluginsThroughGdbusAndDbusSend() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(Self.good)
            try await env.startDaemon()
            let ping = try await env.gdbus(["call", "@BUS", "--dest", "org.berth.Berth1", "--object-path", "/org/berth/Berth1",
                "--method", "org.berth.Berth1.Manager.Ping"])
            #expect(ping.status == 0 && ping.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "()", "\(ping)")
            let list = try await env.run(["dbus-send", "--bus=\(env.bus.address)", "--print-reply", "--dest=org.berth.Berth1",
                "/org/berth/Berth1", "org.berth.Berth1.Manager.ListPlugins"])
            #expect(list.status == 0, "\(list)")
            #expect(list.stdout.contains("string \"fixture\"") && list.stdout.contains("string \"active\""), "\(list)")
            let plugin = try await env.busctl(["get-property", "org.berth.Berth1", "/org/berth/Berth1/plugin/fixture",
                "org.berth.Berth1.Plugin", "Id", "Version", "State", "LastError"])
            #expect(plugin.stdout == "s \"fixture\"\ns \"1.0.0\"\ns \"active\"\ns \"\"\n", "\(plugin)")
        }
    }

    @Test func propertiesChangedReachesSubscribers() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(Self.good)
            try await env.startDaemon()
            let client = try env.connect()
            let stream = try await client.signals(path: "/org/berth/Berth1/fixture", member: "PropertiesChanged")
            let r = try await env.busctl(["call", "org.berth.Berth1", "/org/berth/Berth1/fixture", "org.berth.Berth1.Fixture",
                "SetCounter", "u", "42"])
            #expect(r.status == 0, "\(r)")
            var iterator = stream.makeAsyncIterator()
            let signal = try #require(await iterator.next())
            #expect(signal.arguments.first == .string("org.berth.Berth1.Fixture"))
            #expect(signal.arguments[1].stringKeyed?["Counter"] == .variant(.uint32(42)))
            // A writable property: a bad value is refused with a named error and the old value stays.
            let bad = try await env.busctl(["set-property", "org.berth.Berth1", "/org/berth/Berth1/fixture",
                "org.berth.Berth1.Fixture", "Volume", "u", "11"])
            #expect(bad.status != 0 && bad.stderr.contains("Volume must be 0 to 10, got 11"), "\(bad)")
            let good = try await env.busctl(["set-property", "org.berth.Berth1", "/org/berth/Berth1/fixture",
                "org.berth.Berth1.Fixture", "Volume", "u", "7"])
            #expect(good.status == 0)
            let changed = try #require(await iterator.next())
            #expect(changed.arguments[1].stringKeyed?["Volume"] == .variant(.uint32(7)))
        }
    }

    @Test func objectManagerListsObjectsAndAnnouncesJobs() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(Self.good)
            try await env.startDaemon()
            let client = try env.connect()
            let managed = try await client.call("org.berth.Berth1", "/org/berth/Berth1", "org.freedesktop.DBus.ObjectManager",
                "GetManagedObjects")
            let paths = Set((managed.first?.stringKeyed ?? [:]).keys)
            #expect(paths == ["/org/berth/Berth1/fixture", "/org/berth/Berth1/plugin/fixture"])
            let added = try await client.signals(path: "/org/berth/Berth1", interface: "org.freedesktop.DBus.ObjectManager")
            let jobs = try await client.signals(path: "/org/berth/Berth1", interface: "org.berth.Berth1.Manager")
            let reply = try await client.call("org.berth.Berth1", "/org/berth/Berth1/fixture", "org.berth.Berth1.Fixture",
                "Sleep", [.double(0.05)])
            let jobPath = try #require(reply.last?.string)
            var addedIterator = added.makeAsyncIterator()
            let interfacesAdded = try #require(await addedIterator.next())
            #expect(interfacesAdded.member == "InterfacesAdded" && interfacesAdded.arguments.first == .objectPath(jobPath))
            var jobIterator = jobs.makeAsyncIterator()
            let new = try #require(await jobIterator.next())
            #expect(new.member == "JobNew")
            #expect(new.arguments == [reply[0], .objectPath(jobPath), .string("fixture"), .string("sleep")])
            let removed = try #require(await jobIterator.next())
            #expect(removed.member == "JobRemoved")
            #expect(removed.arguments == [reply[0], .objectPath(jobPath), .string("fixture"), .string("done")])
            // The job stays readable for a moment after JobRemoved.
            let state = try await env.busctl(["get-property", "org.berth.Berth1", jobPath, "org.berth.Berth1.Job", "State",
                "Result", "Progress"])
            #expect(state.stdout == "s \"done\"\ns \"done\"\nd 1\n", "\(state)")
        }
    }

    @Test func jobsEndFailedAndCanceledWithReasons() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(Self.good)
            try await env.startDaemon()
            let client = try env.connect()
            let jobs = try await client.signals(path: "/org/berth/Berth1", interface: "org.berth.Berth1.Manager", member: "JobRemoved")
            var iterator = jobs.makeAsyncIterator()
            let failing = try await client.call("org.berth.Berth1", "/org/berth/Berth1/fixture", "org.berth.Berth1.Fixture",
                "Sleep", [.double(0.25)])
            let failed = try #require(await iterator.next())
            #expect(failed.arguments[3] == .string("failed"))
            let error = try await client.getProperty("org.berth.Berth1", failing[1].string!, "org.berth.Berth1.Job", "ErrorName")
            #expect(error == .string("org.berth.Berth1.Error.Failed"))

            let long = try await client.call("org.berth.Berth1", "/org/berth/Berth1/fixture", "org.berth.Berth1.Fixture",
                "Sleep", [.double(60)])
            let list = try await env.busctl(["call", "org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager", "ListJobs"])
            #expect(list.stdout.contains("\"fixture\" \"sleep\" \"\(long[1].string!)\""), "\(list)")
            let cancel = try await env.busctl(["call", "org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager",
                "CancelJob", "u", "\(long[0].uint32!)"])
            #expect(cancel.status == 0, "\(cancel)")
            let canceled = try #require(await iterator.next())
            #expect(canceled.arguments[0] == long[0] && canceled.arguments[3] == .string("canceled"))
        }
    }

    @Test func namedErrorsNameTheObjectAndValue() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(Self.good)
            try await env.startDaemon()
            let client = try env.connect()
            func expectError(_ name: String, containing text: String, _ call: () async throws -> Void) async {
                do {
                    try await call()
                    Issue.record("expected \(name)")
                } catch let error as DBusError {
                    #expect(error.name == "org.berth.Berth1.Error." + name, "\(error)")
                    #expect(error.message.contains(text), "\(error.message)")
                } catch {
                    Issue.record("unexpected \(error)")
                }
            }
            await expectError("InvalidArgument", containing: "fixture refuses \"boom\"") {
                _ = try await client.call("org.berth.Berth1", "/org/berth/Berth1/fixture", "org.berth.Berth1.Fixture", "Fail",
                    [.string("boom")])
            }
            await expectError("NotFound", containing: "job 999") {
                _ = try await client.call("org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager", "CancelJob",
                    [.uint32(999)])
            }
            await expectError("InvalidArgument", containing: "\"relative.yaml\"") {
                _ = try await client.call("org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager", "ImportConfig",
                    [.string("relative.yaml"), .bool(false), .bool(true)])
            }
            await expectError("NotFound", containing: "/nonexistent/import.yaml") {
                _ = try await client.call("org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager", "ImportConfig",
                    [.string("/nonexistent/import.yaml"), .bool(false), .bool(true)])
            }
            await expectError("InvalidArgument", containing: "cannot sleep -1") {
                _ = try await client.call("org.berth.Berth1", "/org/berth/Berth1/fixture", "org.berth.Berth1.Fixture", "Sleep",
                    [.double(-1)])
            }
            // sd-bus checks signatures before our code runs: a wrong type is refused, the daemon lives on.
            let wrong = try await env.busctl(["call", "org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager",
                "CancelJob", "s", "x"])
            #expect(wrong.status != 0 && wrong.stderr.contains("expecting 'u'"), "\(wrong)")
            let ping = try await env.busctl(["call", "org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager", "Ping"])
            #expect(ping.status == 0)
        }
    }

    @Test func marshalsEveryTypeClientsSend() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(Self.good)
            try await env.startDaemon()
            let client = try env.connect()
            let values: [DBusValue] = [
                .byte(7), .bool(true), .int16(-3), .uint16(65535), .int32(-70000), .uint32(4_000_000_000),
                .int64(-1 << 40), .uint64(1 << 63), .double(2.5), .string("héllo ✓"), .objectPath("/a/b"), .signature("a{sv}"),
                .array(element: "s", []), .strings(["a", "b"]), .vardict([("k", .int32(1)), ("nested", .vardict([("x", .bool(false))]))]),
                .structure([.string("s"), .uint32(1), .array(element: "(ii)", [.structure([.int32(1), .int32(2)])])]),
                .dictionary(key: "u", value: "as", [DBusDictEntry(.uint32(1), .strings(["x"]))]),
                .variant(.variant(.string("deep"))),
            ]
            for value in values {
                let reply = try await client.call("org.berth.Berth1", "/org/berth/Berth1/fixture", "org.berth.Berth1.Fixture",
                    "Echo", [.variant(value)])
                #expect(reply == [.variant(value)], "round trip of \(value.signature)")
            }
            // And from an independent client: gdbus sends a complex variant and reads it back.
            let r = try await env.gdbus(["call", "@BUS", "--dest", "org.berth.Berth1", "--object-path", "/org/berth/Berth1/fixture",
                "--method", "org.berth.Berth1.Fixture.Echo", "<{'a': <[1, 2]>, 'b': <('x', true)>}>"])
            #expect(r.stdout.contains("<{'a': <[1, 2]>, 'b': <('x', true)>}>"), "\(r)")
        }
    }
}

/// Signals emitted from many tasks at once all reach a subscriber, each once (the bus thread's queue loses nothing).
@Suite struct SignalDeliveryTests {
    @Test(.timeLimit(.minutes(1))) func burstsFromManyTasksArriveCompletely() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libTestFixtureGood.so"])
            try await env.startDaemon()
            let client = try env.connect()
            let stream = try await client.signals(path: "/org/berth/Berth1/fixture", member: "Poked")
            let count = 3000
            _ = try await client.call("org.berth.Berth1", "/org/berth/Berth1/fixture", "org.berth.Berth1.Fixture",
                "PokeFromTasks", [.uint32(UInt32(count))])
            var seen = Set<String>()
            var iterator = stream.makeAsyncIterator()
            while seen.count < count, let signal = await iterator.next() {
                let inserted = seen.insert(signal.arguments.first?.string ?? "").inserted
                #expect(inserted, "a signal arrived twice")
            }
            #expect(seen.count == count)
        }
    }
}
