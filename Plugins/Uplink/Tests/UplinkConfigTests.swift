import BerthKit
import BerthTestSupport
import Foundation
import Testing

@testable import UplinkPlugin

struct UplinkConfigTests {
    func parse(_ yaml: String) throws -> UplinkConfig {
        try UplinkConfig.parse(YAMLParser.parse(yaml, file: "berth.yaml")?["uplink"])
    }

    @Test func defaultsAndDestinations() throws {
        let c = try parse(
            """
            uplink:
              destinations:
                broker: {kind: mqtt, host: example.org}
                desk: {kind: http, url: "https://example.org/in", events: ["pickup.*"]}
            """)
        #expect(c.heartbeat == .seconds(60))
        #expect(c.destinations.map(\.name) == ["broker", "desk"])
        #expect(c.destinations[0].port == 1883)
        #expect(c.destinations[0].topic == "berth/{host}/{plugin}/{event}")
        #expect(c.destinations[0].routes("recorder.Heartbeat"))
        #expect(!c.destinations[0].routes("manager.JobNew"))
        #expect(c.destinations[1].routes("pickup.DeployFailed"))
        #expect(!c.destinations[1].routes("recorder.Heartbeat"))
    }

    @Test func errorsNameFileLineAndKey() throws {
        let cases: [(String, String)] = [
            ("uplink:\n  destinations:\n    b: {kind: mqtt, host: h, prot: 1}\n", "berth.yaml:3"),
            ("uplink:\n  destinations:\n    b: {kind: smtp}\n", "uplink.destinations.b.kind"),
            ("uplink:\n  destinations:\n    b: {kind: http, url: ftp://x}\n", "must start with http://"),
            ("uplink:\n  destinations:\n    b: {kind: mqtt, host: h, topic: \"a/#\"}\n", "wildcards"),
            ("uplink:\n  destinations:\n    b: {kind: mqtt, host: h, topic: \"a/{nope}\"}\n", "{nope}"),
            ("uplink:\n  events: [pickup]\n", "is not an event"),
            ("uplink:\n  retry_initial: 10s\n  retry_max: 1s\n", "retry_max"),
            ("uplink:\n  destinations:\n    b: {kind: mqtt, host: h, credentials: relative.yaml}\n", "absolute"),
        ]
        for (yaml, expected) in cases {
            do {
                _ = try parse(yaml)
                Issue.record("accepted: \(yaml)")
            } catch let error as BerthError {
                #expect(error.code == .invalidConfig)
                #expect(error.message.contains(expected), "\(error.message)")
                #expect(error.message.hasPrefix("berth.yaml:"), "\(error.message)")
            }
        }
    }

    @Test func exportLeavesOutCredentialsAndReadsBack() throws {
        let c = try parse(
            """
            uplink:
              host: field-17
              destinations:
                broker: {kind: mqtt, host: example.org, credentials: /etc/berth/secret.yaml, tls_ca: /etc/ca.pem}
            """)
        let text = c.node().yamlText()
        #expect(!text.contains("secret"))
        #expect(!text.contains("credentials"))
        var back = try parse("uplink:\n" + text.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
        back.destinations[0].credentials = "/etc/berth/secret.yaml"
        #expect(back == c)
    }

    @Test func importedDestinationsOverrideByNameAndReadBackWithTheirCredentialsPath() throws {
        let file = try parse(
            """
            uplink:
              events: [pickup.*]
              destinations:
                broker: {kind: mqtt, host: a.example.org}
                desk: {kind: http, url: "https://example.org/in"}
            """)
        let imported = try parse(
            """
            uplink:
              destinations:
                broker: {kind: mqtt, host: b.example.org, credentials: /etc/berth/b.yaml}
                fleet: {kind: http, url: "https://fleet.example.org/", events: [uplink.Heartbeat]}
            """
        ).destinations
        let merged = UplinkConfig.merging(file: file, imported: imported)
        #expect(merged.destinations.map(\.name) == ["broker", "desk", "fleet"])
        #expect(merged.destinations[0].host == "b.example.org")
        #expect(merged.destinations[1] == file.destinations[1])
        let dir = NSTemporaryDirectory() + "uplink-store-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = ImportedDestinations(stateDirectory: dir)
        try store.save(imported)
        let back = store.load(defaultEvents: file.events, logger: Logger(label: "test"))
        #expect(back == imported, "every key comes back, the route and the credentials path included")
        try store.save([])
        #expect(!FileManager.default.fileExists(atPath: store.path))
    }

    @Test func credentialsFileMustBePrivate() throws {
        let dir = NSTemporaryDirectory() + "uplink-cred-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/c.yaml"
        try FileSystem.writeAtomically(file, text: "username: u\npassword: p\n", mode: 0o644)
        #expect(throws: BerthError.self) { try Credentials.load(file, destination: "b") }
        chmod(file, 0o600)
        let c = try Credentials.load(file, destination: "b")
        #expect(c.username == "u" && c.password == "p")
    }

    @Test func messageCarriesSchemaIdHostAndFields() throws {
        let event = UplinkEvent(
            plugin: "pickup", event: "Deployed", fields: [("name", .string("a\"b"))], timeUSec: 1_700_000_000_123_456)
        let id = UplinkMessage.newID()
        let json = UplinkMessage.payload(id: id, event: event, identity: HostIdentity(host: "h", machineID: "m"))
        let parsed = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] ?? [:]
        #expect(parsed["schema"] as? Int == 1)
        #expect(parsed["id"] as? String == id)
        #expect(parsed["time"] as? String == "2023-11-14T22:13:20.123456Z")
        #expect((parsed["fields"] as? [String: Any])?["name"] as? String == "a\"b")
        #expect(UplinkMessage.newID() != id)
    }
}

struct SignalLimiterTests {
    @Test func atMostFiftyPerSecondPerName() {
        var limiter = SignalLimiter()
        var allowed = 0
        for _ in 0..<200 where limiter.allow("DeliveryFailed", now: 1_000_000) { allowed += 1 }
        #expect(allowed == 50)
        let other = limiter.allow("Delivered", now: 1_000_000)
        #expect(other, "each name has its own budget")
        let later = limiter.allow("DeliveryFailed", now: 2_000_000)
        #expect(later, "a new second, a new budget")
        #expect(limiter.suppressed == 150)
    }
}
