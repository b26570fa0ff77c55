import BerthKit
import BerthTestSupport
import Foundation
import Testing

@testable import PickupPlugin

/// Targets, uploads, the log, rollback, markers and persistence across a daemon restart.
@Suite(.serialized) struct DeploymentTests {
    func bytes(_ text: String) -> DBusValue { .array(element: "y", Array(text.utf8).map { .byte($0) }) }

    @Test func badUploadsAreInvalidArguments() async throws {
        try await TestEnvironment.with { env in
            let pickup = try await PickupHarness.start(env)
            // A NUL cannot travel in a D-Bus string (the client library cuts it); NameRules is checked directly below.
            #expect(throws: BerthError.self) { try NameRules.checkPlainName("a\u{0}b") }
            for name in ["../x", "/etc/x", "", String(repeating: "n", count: 256), "sub/x", ".."] {
                do {
                    _ = try await pickup.call("Deploy", [.string(name), bytes("data"), .string("files")])
                    Issue.record("Deploy accepted \(name.debugDescription)")
                } catch let error as DBusError {
                    #expect(
                        error.name == "org.berth.Berth1.Error.InvalidArgument", "\(name.debugDescription): \(error)")
                }
            }
            for target in ["", "nowhere", "instances/", "instances/../x"] {
                await #expect(throws: DBusError.self) {
                    _ = try await pickup.call("Deploy", [.string("ok.txt"), bytes("x"), .string(target)])
                }
            }
            // A real client (busctl) sees the same error name.
            let r = try await env.busctl([
                "call", "org.berth.Berth1", PickupHarness.path, PickupHarness.interface, "Deploy", "says", "../x", "1",
                "65",
                "files",
            ])
            #expect(r.status != 0 && r.stderr.contains("plain name"), "\(r)")
            #expect(pickup.outcomes.isEmpty)
        }
    }

    /// The longest name an upload may have (255 bytes) deploys, is stored, published and rolled back like any other
    /// (temp names used to be the artifact's name with more around it, so 251 to 255 bytes failed).
    @Test func uploadWithA255ByteNameDeploys() async throws {
        try await TestEnvironment.with { env in
            let pickup = try await PickupHarness.start(env)
            let name = String(repeating: "n", count: 251) + ".txt"
            for version in ["v1", "v2"] {
                let reply = try await pickup.call("Deploy", [.string(name), bytes(version), .string("files")])
                let seen = try await pickup.waitFor(name, count: version == "v1" ? 1 : 2)
                #expect(seen.last?.ok == true && seen.last?.id == reply.first?.string, "\(seen)")
            }
            let published = pickup.stateDir + "/published/" + name
            #expect(try FileSystem.readText(published) == "v2")
            _ = try await pickup.call("Rollback", [.string(name), .string("files")])
            _ = try await pickup.waitFor(name, count: 3)
            #expect(try FileSystem.readText(published) == "v1")
        }
    }

    @Test func serviceDefinitionWithoutServicesPluginFailsNotSupported() async throws {
        try await TestEnvironment.with { env in
            let pickup = try await PickupHarness.start(env)
            try Files.write(pickup.folder("services") + "/web.yaml", "exec: [/bin/true]\n")
            let seen = try await pickup.waitFor("web.yaml")
            #expect(seen.count == 1 && !seen[0].ok && seen[0].target == "services")
            #expect(seen[0].detail.contains("services plugin is not active"), "\(seen[0].detail)")
            let rows = try await pickup.deployments()
            #expect(rows.first?[3] == "failed" && rows.first?[0] == seen[0].id)
            // instances/<app> without the instances plugin: failed the same way.
            try FileManager.default.createDirectory(
                atPath: pickup.folder("instances") + "/shop", withIntermediateDirectories: true)
            try Files.write(pickup.folder("instances") + "/shop/shop.tar.gz", "not really")
            let shop = try await pickup.waitFor("shop.tar.gz")
            #expect(
                !shop[0].ok && shop[0].target == "instances/shop"
                    && shop[0].detail.contains("instances plugin is not active"))
        }
    }

    @Test func configTargetImportsAllOrNothing() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libTestFixtureGood.so"])
            let pickup = try await PickupHarness.start(env)
            let config = pickup.folder("config")
            try Files.write(config + "/good.yaml", "fixture:\n  items:\n    a: \"1\"\n")
            let good = try await pickup.waitFor("good.yaml")
            #expect(good[0].ok, "\(good)")
            let items = try await pickup.client.getProperty(
                "org.berth.Berth1", "/org/berth/Berth1/fixture", "org.berth.Berth1.Fixture", "Items")
            #expect("\(items)".contains("\"a\""), "\(items)")
            try Files.write(config + "/bad.yaml", "fixture:\n  items:\n    b: \"2\"\n  typo: 1\n")
            let bad = try await pickup.waitFor("bad.yaml")
            #expect(!bad[0].ok && bad[0].detail.contains("typo"), "\(bad)")
            let after = try await pickup.client.getProperty(
                "org.berth.Berth1", "/org/berth/Berth1/fixture", "org.berth.Berth1.Fixture", "Items")
            #expect(after == items)
        }
    }

    @Test func rollbackUndeployAndMarkers() async throws {
        try await TestEnvironment.with { env in
            let pickup = try await PickupHarness.start(env)
            let source = try Files.makeTemp()
            defer { try? FileManager.default.removeItem(atPath: source) }
            _ = try await pickup.call(
                "AddDirectory",
                [
                    .string("site"), .string(source), .string("files"),
                    .vardict([
                        ("markers", .bool(true)), ("undeploy_on_delete", .bool(true)),
                        ("patterns", .strings(["*.html"])),
                    ]),
                ])
            try Files.write(source + "/index.html", "v1")
            try await pickup.waitFor("index.html")
            try Files.write(source + "/index.html", "v2")
            let two = try await pickup.waitFor("index.html", count: 2)
            try await waitUntil("the .deployed marker names the second deployment") {
                (try? String(contentsOfFile: source + "/index.html.deployed", encoding: .utf8))?.hasPrefix(
                    two[1].id + " ") == true
            }
            try Files.write(source + "/skip.txt", "not an html file")
            let id = try await pickup.call("Rollback", [.string("index.html"), .string("files")]).first?.string ?? ""
            let three = try await pickup.waitFor("index.html", count: 3)
            let v1 = try await Files.sha256(of: "v1")
            #expect(three[2].id == id && three[2].ok && three[2].detail == v1)
            let published = pickup.stateDir + "/published/index.html"
            #expect(try String(contentsOfFile: published, encoding: .utf8) == "v1")

            // Deleting the source undeploys it (undeploy_on_delete) and clears the marker.
            unlink(source + "/index.html")
            try await waitUntil("index.html undeployed") {
                try await pickup.deployments().first.map { $0[1] == "index.html" && $0[3] == "undeployed" } ?? false
            }
            #expect(!FileManager.default.fileExists(atPath: published))
            #expect(!FileManager.default.fileExists(atPath: source + "/index.html.deployed"))
            #expect(pickup.outcomes(named: "skip.txt").isEmpty)
            await #expect(throws: DBusError.self) {
                _ = try await pickup.call("Undeploy", [.string("index.html"), .string("files")])
            }
        }
    }

    /// `keep_versions` copies per artifact stay in the store (the newest ones); Rollback reaches the newest earlier
    /// one, and the error for an artifact never deployed names it.
    @Test func keepVersionsPrunesTheStore() async throws {
        try await TestEnvironment.with { env in
            let pickup = try await PickupHarness.start(env, config: "pickup:\n  keep_versions: 2\n")
            var shas: [String] = []
            for version in 1...4 {
                _ = try await pickup.call("Deploy", [.string("a.txt"), bytes("v\(version)"), .string("files")])
                try await pickup.waitFor("a.txt", count: version)
                shas.append(try await Files.sha256(of: "v\(version)"))
            }
            let store = pickup.stateDir + "/store"
            for (index, sha) in shas.enumerated() {
                let kept = FileManager.default.fileExists(atPath: store + "/" + sha + "/a.txt")
                #expect(kept == (index >= 2), "version \(index + 1) kept: \(kept)")
            }
            _ = try await pickup.call("Rollback", [.string("a.txt"), .string("files")])
            let outcomes = try await pickup.waitFor("a.txt", count: 5)
            #expect(outcomes[4].ok && outcomes[4].detail == shas[2])
            #expect(try String(contentsOfFile: pickup.stateDir + "/published/a.txt", encoding: .utf8) == "v3")
            do {
                _ = try await pickup.call("Rollback", [.string("never.txt"), .string("files")])
                Issue.record("Rollback of an artifact never deployed succeeded")
            } catch let error as DBusError {
                #expect(
                    error.name == "org.berth.Berth1.Error.NotFound" && error.message.contains("never.txt"), "\(error)")
            }
        }
    }

    /// berthd killed with SIGKILL in the middle of a burst: the next start deploys what was not logged, so every
    /// file ends with exactly one `deployed` row holding its content, and published copies match.
    @Test func killNineDuringABurstLosesNothing() async throws {
        try await TestEnvironment.with { env in
            let pickup = try await PickupHarness.start(env)
            let files = pickup.folder("files")
            let count = 300
            for i in 0..<count { try Files.write(files + "/k\(i).txt", "content \(i)") }
            try await waitUntil("some of the burst deployed") { pickup.outcomes.count >= 10 }
            try await pickup.stopDaemon(SIGKILL)
            let before = pickup.outcomes.count
            try await pickup.startDaemon()
            try await waitUntil("every file in the log", timeout: .seconds(30)) {
                Set(try await pickup.deployments(limit: 10000).map { $0[1] }).count >= count
            }
            let rows = try await pickup.deployments(limit: 10000)
            for i in 0..<count {
                let name = "k\(i).txt"
                let mine = rows.filter { $0[1] == name }
                #expect(mine.count == 1 && mine.first?[3] == "deployed", "\(name): \(mine)")
                #expect(mine.first?[4] == (try await Files.sha256(of: "content \(i)")), "\(name)")
                let published = try String(contentsOfFile: pickup.stateDir + "/published/" + name, encoding: .utf8)
                #expect(published == "content \(i)")
            }
            #expect(before < count, "the kill came after the whole burst: nothing was tested (\(before))")
        }
    }

    @Test func failedMarkerCarriesTheReason() async throws {
        try await TestEnvironment.with { env in
            let source = try Files.makeTemp()
            defer { try? FileManager.default.removeItem(atPath: source) }
            let pickup = try await PickupHarness.start(
                env,
                config: """
                    pickup:
                      dirs:
                        defs: {path: \(source), target: services, markers: true}
                    """)
            try Files.write(source + "/api.yaml", "exec: [/bin/true]\n")
            let seen = try await pickup.waitFor("api.yaml")
            try await waitUntil("api.yaml.failed written") {
                FileManager.default.fileExists(atPath: source + "/api.yaml.failed")
            }
            let reason = try String(contentsOfFile: source + "/api.yaml.failed", encoding: .utf8)
            #expect(reason.contains(seen[0].detail))
        }
    }

    /// Two AddDirectory calls racing for one name: one adds, the other is AlreadyExists, and the one folder added
    /// is the one watched and the one kept across a restart.
    @Test func concurrentAddsOfOneNameAddOneFolder() async throws {
        try await TestEnvironment.with { env in
            let pickup = try await PickupHarness.start(env)
            let a = try Files.makeTemp()
            let b = try Files.makeTemp()
            defer {
                try? FileManager.default.removeItem(atPath: a)
                try? FileManager.default.removeItem(atPath: b)
            }
            func add(_ name: String, _ path: String) async -> DBusError? {
                do {
                    _ = try await pickup.call(
                        "AddDirectory", [.string(name), .string(path), .string("files"), .vardict([])])
                    return nil
                } catch {
                    return error as? DBusError
                }
            }
            var winners: [String: String] = [:]
            for round in 0..<5 {
                let name = "twin\(round)"
                async let first = add(name, a)
                async let second = add(name, b)
                let (errorA, errorB) = await (first, second)
                #expect(
                    (errorA == nil) != (errorB == nil),
                    "round \(round): \(String(describing: errorA)), \(String(describing: errorB))")
                #expect((errorA ?? errorB)?.name == "org.berth.Berth1.Error.AlreadyExists")
                winners[name] = errorA == nil ? a : b
            }
            func directories() async throws -> [String: String] {
                let rows = try await pickup.client.getProperty(
                    "org.berth.Berth1", PickupHarness.path, PickupHarness.interface, "Directories")
                var found: [String: String] = [:]
                for row in rows.items ?? [] {
                    guard let fields = row.items, fields.count == 3, let name = fields[0].string else { continue }
                    if name.hasPrefix("twin") { found[name] = fields[1].string }
                }
                return found
            }
            #expect(try await directories() == winners)
            try await pickup.stopDaemon()
            try await pickup.startDaemon()
            #expect(try await directories() == winners)
        }
    }

    @Test func everythingStaysDeployedAcrossRestartWithoutRedeploy() async throws {
        try await TestEnvironment.with { env in
            let pickup = try await PickupHarness.start(env)
            let extra = try Files.makeTemp()
            defer { try? FileManager.default.removeItem(atPath: extra) }
            _ = try await pickup.call(
                "AddDirectory", [.string("extra"), .string(extra), .string("files"), .vardict([])])
            try Files.write(pickup.folder("files") + "/keep.txt", "keep")
            try Files.write(extra + "/x.txt", "x")
            try await pickup.waitFor("keep.txt")
            try await pickup.waitFor("x.txt")
            let before = try await pickup.deployments()
            try await pickup.stopDaemon()

            try Files.write(pickup.folder("files") + "/while-down.txt", "new")
            try await pickup.startDaemon()
            try await pickup.waitFor("while-down.txt")
            try await pickup.barrier(in: pickup.folder("files"))
            #expect(pickup.outcomes(named: "keep.txt").count == 1 && pickup.outcomes(named: "x.txt").count == 1)
            let after = try await pickup.deployments()
            #expect(after.count == before.count + 2)
            #expect(FileManager.default.fileExists(atPath: pickup.stateDir + "/published/keep.txt"))
            // The folder added at run time came back and is live.
            let dirs = try await pickup.client.getProperty(
                "org.berth.Berth1", PickupHarness.path, PickupHarness.interface, "Directories")
            #expect("\(dirs)".contains(extra))
            try Files.write(extra + "/y.txt", "y")
            try await pickup.waitFor("y.txt")
            _ = try await pickup.call("RemoveDirectory", [.string("extra")])
            await #expect(throws: DBusError.self) { _ = try await pickup.call("RemoveDirectory", [.string("files")]) }
            await #expect(throws: DBusError.self) { _ = try await pickup.call("RemoveDirectory", [.string("extra")]) }
        }
    }
}
