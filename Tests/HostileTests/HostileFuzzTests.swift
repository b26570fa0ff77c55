import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// The project's own hostile client (issue 13): berthd with the four shipped plugins, objects of every kind, then
/// every method and writable property of every object found by introspection, called with edge values and with
/// wrong signatures. Every call must end (a reply or an error within the time limit), with an
/// `org.berth.Berth1.Error.*` name (or `org.freedesktop.DBus.Error.*` for a wrong signature or a standard
/// interface), a message of bounded length and, on success, the introspected reply signature; berthd must stay
/// alive and answer Ping after every method, stay under an RSS limit and write nothing outside its folders.
/// Deterministic for a seed; sizes and switches in `FuzzSettings` (environment variables).
@Suite struct HostileFuzzTests {
    @Test(.timeLimit(.minutes(5))) func everyMethodOfEveryObjectSurvivesHostileArguments() async throws {
        let settings = FuzzSettings.fromEnvironment()
        try await TestEnvironment.with { env in
            let world = try await HostileWorld.start(env, settings: settings)
            defer { world.cleanUp() }
            let fuzzer = HostileFuzzer(world: world, settings: settings)
            // Every failure found is reported, also when the run stops early (berthd would not start again).
            do { try await fuzzer.run() } catch {
                for failure in fuzzer.failures { Issue.record(Comment(rawValue: failure)) }
                throw error
            }
            for failure in fuzzer.failures { Issue.record(Comment(rawValue: failure)) }
        }
    }
}

final class HostileFuzzer: @unchecked Sendable {
    let world: HostileWorld
    let settings: FuzzSettings
    let edges: EdgeValues
    private(set) var failures: [String] = []
    private var calls = 0
    private var unsendable = 0
    private var longForeignErrors = 0
    private var lastGdbus = ""
    private var slowest: [(Duration, String)] = []
    private let started = ContinuousClock.now

    init(world: HostileWorld, settings: FuzzSettings) {
        self.world = world
        self.settings = settings
        edges = EdgeValues(settings: settings, fixtures: world.fixtures)
    }

    func fail(_ text: String) {
        failures.append("[seed \(settings.seed)] " + text)
        print("hostile-fuzz FAILURE: \(text)")
    }

    func run() async throws {
        print("hostile-fuzz: \(settings.summary)")
        try await world.createObjects()
        if settings.stallLimit > .zero { try world.startStallProbe() }
        let objects = try await walk("/org/berth/Berth1")
        print("hostile-fuzz: \(objects.count) objects: \(objects.map(\.path).joined(separator: " "))")
        for object in objects {
            for interface in object.interfaces.sorted(by: { $0.name < $1.name }) {
                for method in ordered(interface.methods) {
                    let qualified = "\(interface.name).\(method.name)"
                    if qualified == "org.berth.Berth1.Manager.Shutdown" { continue }
                    if let only = settings.only, !qualified.contains(only) { continue }
                    try await fuzz(object, interface.name, method)
                }
                if let only = settings.only, !"\(interface.name).Properties".contains(only),
                    !"Properties".contains(only)
                {
                    continue
                }
                try await fuzzProperties(object, interface)
            }
        }
        try await shutdown()
        let outside = world.writesOutside()
        print(
            "hostile-fuzz: checked \(world.outsideCount) paths outside berthd's folders, berthd's working folder \(world.workingFolder)"
        )
        if !outside.isEmpty { fail("berthd wrote outside its folders: \(outside.joined(separator: ", "))") }
        for finding in world.watchdogFindings.withLock({ $0 }) { fail(finding) }
        for (what, took) in world.stallFindings.withLock({ $0 }).sorted(by: { $0.value > $1.value }) {
            fail("stall: a Ping from another client waited \(took) (limit \(settings.stallLimit)) during \(what)")
        }
        let elapsed = ContinuousClock.now - started
        print(
            "hostile-fuzz: \(calls) calls (\(unsendable) refused by the client library itself) in \(elapsed), "
                + "peak RSS \(world.peakRSS.withLock { $0 } >> 20) MiB, slowest Ping of the other client "
                + "\(world.slowestPing.withLock { $0 }), \(failures.count) failure(s)")
        if longForeignErrors > 0 {
            print(
                "hostile-fuzz: note: \(longForeignErrors) error(s) written by sd-bus itself quote a value longer than \(settings.maxErrorBytes) bytes"
            )
        }
        for (d, what) in slowest.sorted(by: { $0.0 > $1.0 }).prefix(8) { print("hostile-fuzz: slow: \(d) \(what)") }
    }

    /// Destructive members last, so that an object is fuzzed whole before it goes.
    func ordered(_ methods: [IntrospectedObject.Method]) -> [IntrospectedObject.Method] {
        let last: Set<String> = ["Destroy", "Remove", "RemoveDirectory", "Undeploy", "Cancel"]
        return methods.sorted { a, b in
            let (la, lb) = (last.contains(a.name), last.contains(b.name))
            return la != lb ? !la : a.name < b.name
        }
    }

    /// Walks the tree by introspection; at most two job objects (they are all alike).
    func walk(_ root: String) async throws -> [IntrospectedObject] {
        var queue = [root]
        var seen: Set<String> = []
        var objects: [IntrospectedObject] = []
        var jobs = 0
        while !queue.isEmpty {
            let path = queue.removeFirst()
            guard seen.insert(path).inserted else { continue }
            let reply = try await world.call(path, "org.freedesktop.DBus.Introspectable", "Introspect")
            let object = IntrospectionParser.parse(path: path, xml: reply.first?.string ?? "")
            if object.interfaces.contains(where: { $0.name.hasPrefix("org.berth.") }) { objects.append(object) }
            for child in object.children.sorted() {
                if child.hasPrefix("/org/berth/Berth1/job/") {
                    jobs += 1
                    if jobs > 2 { continue }
                }
                queue.append(child)
            }
        }
        return objects.sorted { $0.path < $1.path }
    }

    // MARK: Calls

    func calls(for method: IntrospectedObject.Method, _ iface: String, _ object: IntrospectedObject) -> [FuzzCall] {
        let base = world.baseArguments(iface, method.name, method.inTypes, object: object)
        var list = EdgeValues.wrongSignatures(method.inTypes)
        list.append(FuzzCall(kind: .edge, label: "base arguments", arguments: base))
        for (i, type) in method.inTypes.enumerated() {
            for (label, value) in edges.edges(type) {
                var args = base
                args[i] = value
                list.append(FuzzCall(kind: .edge, label: "arg \(i) (\(type)) = \(label)", arguments: args))
            }
        }
        return list
    }

    func fuzz(_ object: IntrospectedObject, _ iface: String, _ method: IntrospectedObject.Method) async throws {
        let what = "\(iface).\(method.name) on \(object.path)"
        for call in calls(for: method, iface, object) {
            try await perform(object.path, iface, method.name, call, expect: method.outTypes.joined())
        }
        // Only berth's own interfaces: sd-bus answers Properties, Introspectable and Peer itself.
        if settings.noncharacters, iface.hasPrefix("org.berth."), method.inTypes.contains("s") {
            try await noncharacterCalls(object, iface, method)
        }
        try await checkAlive(after: what)
    }

    func fuzzProperties(_ object: IntrospectedObject, _ interface: IntrospectedObject.Interface) async throws {
        let props = "org.freedesktop.DBus.Properties"
        guard interface.name.hasPrefix("org.berth."), !interface.properties.isEmpty else { return }
        for property in interface.properties where property.readable {
            let call = FuzzCall(
                kind: .edge, label: "Get \(property.name)",
                arguments: [.string(interface.name), .string(property.name)])
            if let reply = try await perform(object.path, props, "Get", call, expect: "v"),
                case .variant(let inner) = reply.first, inner.signature != property.type
            {
                fail(
                    "Get(\(interface.name).\(property.name)) on \(object.path) is \(inner.signature), introspected \(property.type)"
                )
            }
        }
        _ = try await perform(
            object.path, props, "GetAll", FuzzCall(kind: .edge, label: "GetAll", arguments: [.string(interface.name)]),
            expect: "a{sv}")
        for property in interface.properties where property.writable {
            var values = edges.edges(property.type).map { ("value \($0.0)", DBusValue.variant($0.1)) }
            values.append(("a value of another type", .variant(property.type == "s" ? .uint32(7) : .string("7"))))
            values.append(("a nested variant", .variant(.variant(EdgeValues.base(property.type)))))
            for (label, value) in values {
                let call = FuzzCall(
                    kind: .edge, label: "Set \(property.name) to \(label)",
                    arguments: [.string(interface.name), .string(property.name), value])
                try await perform(object.path, props, "Set", call, expect: "")
            }
            // Put the base value back (Paused = false) so the rest of the run meets a working object.
            _ = try? await world.call(
                object.path, props, "Set",
                [.string(interface.name), .string(property.name), .variant(EdgeValues.base(property.type))])
        }
        try await checkAlive(after: "the properties of \(interface.name) on \(object.path)")
    }

    /// One call and its checks; returns the reply on success.
    @discardableResult
    func perform(_ path: String, _ iface: String, _ member: String, _ call: FuzzCall, expect: String) async throws
        -> [DBusValue]?
    {
        let what = "\(iface).\(member) on \(path) with \(call.label)"
        world.current.withLock { $0 = what }
        calls += 1
        let start = ContinuousClock.now
        var reply: [DBusValue]?
        var error: DBusError?
        do {
            reply = try await world.client.call(
                HostileWorld.name, path, iface, member, call.arguments, timeout: settings.callTimeout)
        } catch let e as DBusError {
            error = e
        } catch {
            // The client library refused to build the message (an invalid value for sd-bus): nothing was sent.
            unsendable += 1
            if settings.verbose { print("hostile-fuzz: not sendable: \(what): \(error)") }
            return nil
        }
        let took = ContinuousClock.now - start
        slowest.append((took, what))
        if slowest.count > 64 { slowest = Array(slowest.sorted { $0.0 > $1.0 }.prefix(16)) }
        if settings.verbose { print("hostile-fuzz: \(what) -> \(error.map { $0.name } ?? "ok") in \(took)") }
        try await judge(
            what, call.kind, standard: !iface.hasPrefix("org.berth."), reply: reply, error: error, expect: expect)
        return reply
    }

    func judge(
        _ what: String, _ kind: FuzzCall.Kind, standard: Bool, reply: [DBusValue]?, error: DBusError?, expect: String
    )
        async throws
    {
        if let error {
            switch error.name {
            case "org.freedesktop.DBus.Error.NoReply", "org.freedesktop.DBus.Error.Timeout":
                fail("hang: \(what) got no reply within \(settings.callTimeout)")
                world.releaseFIFO()
                try await checkAlive(after: what)
                return
            case "org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner",
                "org.freedesktop.DBus.Error.Disconnected":
                try await checkAlive(after: what)
                return
            default: break
            }
            let berth = error.name.hasPrefix("org.berth.Berth1.Error.")
            let freedesktop = error.name.hasPrefix("org.freedesktop.DBus.Error.")
            switch kind {
            case .wrongSignature:
                if !freedesktop {
                    fail(
                        "\(what): a wrong signature answered \(error.name) (want org.freedesktop.DBus.Error.*): \(error.message.prefix(300))"
                    )
                }
            case .edge:
                let acceptable =
                    berth || error.name == "org.freedesktop.DBus.Error.UnknownObject" || (standard && freedesktop)
                if !acceptable {
                    fail("\(what): error \(error.name) is not org.berth.Berth1.Error.*: \(error.message.prefix(300))")
                }
            }
            // sd-bus's own errors (unknown interface or property) quote the whole value; berthd can bound only its own.
            if error.message.utf8.count > settings.maxErrorBytes && !berth {
                longForeignErrors += 1
            } else if error.message.utf8.count > settings.maxErrorBytes {
                fail(
                    "\(what): the error message has \(error.message.utf8.count) bytes (limit \(settings.maxErrorBytes)): \(error.message.prefix(160))…"
                )
            }
        } else if let reply {
            // sd-bus answers org.freedesktop.DBus.Peer itself without looking at the arguments: not berthd's code.
            if kind == .wrongSignature && !what.hasPrefix("org.freedesktop.DBus.Peer.") {
                fail("\(what): a wrong signature was accepted")
            }
            let signature = reply.map(\.signature).joined()
            if signature != expect { fail("\(what): the reply is '\(signature)', introspected '\(expect)'") }
        }
        if !world.isRunning { try await checkAlive(after: what) }
    }

    /// berthd still runs and answers Ping; else the failure names `what` and berthd is started again.
    func checkAlive(after what: String) async throws {
        if !world.isRunning {
            _ = try? await world.daemon.waitForExit(timeout: .seconds(1))
            fail(
                "berthd died (exit status \(world.daemon.exitStatus)) during or just after \(what); log: \(world.deathNote)"
            )
            try await world.restart()
            return
        }
        if let problem = await world.ping() {
            try? await Task.sleep(for: .milliseconds(200))
            if !world.isRunning {
                fail(
                    "berthd died (exit status \(world.daemon.exitStatus)) during or just after \(what); log: \(world.deathNote)"
                )
                try await world.restart()
                return
            }
            fail("berthd does not answer Ping after \(what): \(problem)")
            world.releaseFIFO()
            if await world.ping() != nil || !world.isRunning { try await world.restart() }
        }
    }

    // MARK: U+10FFFF

    /// sd-bus will not send a noncharacter, dbus-daemon passes it: gdbus sends one in each string argument.
    func noncharacterCalls(_ object: IntrospectedObject, _ iface: String, _ method: IntrospectedObject.Method)
        async throws
    {
        let base = world.baseArguments(iface, method.name, method.inTypes, object: object)
        for (i, type) in method.inTypes.enumerated() where type == "s" {
            var args = base
            args[i] = .string("x\u{10FFFF}\u{FFFE}y")
            let what =
                "\(iface).\(method.name) on \(object.path) with arg \(i) = \"x\\u{10FFFF}\\u{FFFE}y\" (sent by gdbus)"
            world.current.withLock { $0 = what }
            calls += 1
            let seconds = max(1, Int(settings.callTimeout.components.seconds))
            defer { if settings.verbose { print("hostile-fuzz: \(what) -> \(lastGdbus)") } }
            let r = try await world.env.run(
                [
                    "gdbus", "call", "--address", world.env.bus.address, "--dest", HostileWorld.name, "--object-path",
                    object.path,
                    "--method", "\(iface).\(method.name)", "--timeout", "\(seconds)",
                ] + args.map(\.gvariantText),
                timeout: .seconds(seconds + 10))
            lastGdbus = r.status == 0 ? "ok: " + r.stdout.prefix(200) : "status \(r.status): " + r.stderr.prefix(300)
            if r.status == 0 {
                try await judge(what, .edge, standard: false, reply: nil, error: nil, expect: "")
                continue
            }
            // "Error: GDBus.Error:NAME: message"
            guard let range = r.stderr.range(of: "GDBus.Error:") else {
                if r.stderr.contains("Timeout was reached") {
                    fail("hang: \(what) got no reply within \(seconds) s")
                    world.releaseFIFO()
                    try await checkAlive(after: what)
                } else if !r.stderr.contains("Error parsing") {
                    fail("\(what): gdbus failed without a D-Bus error: \(r.stderr.prefix(300))")
                }
                continue
            }
            let rest = r.stderr[range.upperBound...]
            let name = String(rest.prefix { $0 != ":" })
            let message = String(rest.dropFirst(name.count + 1)).trimmingCharacters(in: .whitespacesAndNewlines)
            // berthd's sd-bus refuses the string while reading the message: an InvalidArgument (or sd-bus's
            // InvalidArgs) is right, if the message names the argument (issue 13).
            let argName = i < method.inNames.count ? method.inNames[i] : ""
            if name == "org.freedesktop.DBus.Error.InvalidArgs" || name == "org.berth.Berth1.Error.InvalidArgument" {
                let named = [argName, "argument \(i)", "argument \(i + 1)"].contains {
                    !$0.isEmpty && message.contains($0)
                }
                if !named {
                    fail(
                        "\(what): the error does not name the argument \"\(argName)\": \(name): \(message.prefix(300))")
                }
                continue
            }
            try await judge(
                what, .edge, standard: false, reply: nil, error: DBusError(name: name, message: message), expect: "")
        }
    }

    // MARK: Shutdown

    func shutdown() async throws {
        let manager = "org.berth.Berth1.Manager"
        for call in EdgeValues.wrongSignatures([]) {
            try await perform("/org/berth/Berth1", manager, "Shutdown", call, expect: "")
        }
        try await checkAlive(after: "\(manager).Shutdown with wrong signatures")
        world.current.withLock { $0 = "Shutdown" }
        world.releaseFIFO()
        do {
            _ = try await world.client.call(
                HostileWorld.name, "/org/berth/Berth1", manager, "Shutdown", timeout: settings.callTimeout)
        } catch {
            fail("Shutdown failed: \(error)")
        }
        do {
            let status = try await world.daemon.waitForExit(timeout: .seconds(30))
            if status != 0 { fail("berthd exited \(status) after Shutdown; log: \(world.log.suffix(600))") }
        } catch {
            fail("berthd did not exit within 30 s of Shutdown")
        }
    }
}
