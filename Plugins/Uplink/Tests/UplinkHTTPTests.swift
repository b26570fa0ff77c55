import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// Delivery by HTTP POST to a real receiver (python3's http.server) started by the test on 127.0.0.1.
@Suite(.serialized) struct UplinkHTTPTests {
    @Test func postsEachEventAndRetriesInOrderAfterFailures() async throws {
        try await TestEnvironment.with { env in
            let receiver = try await Receiver(in: env.root)
            let world = try UplinkWorld(env)
            try FileSystem.writeAtomically(
                world.credentialsFile, text: "headers:\n  Authorization: Bearer t0ken\n", mode: 0o600)
            try await world.start(
                config: UplinkWorld.config(
                    destination: "desk", kind: "http",
                    [
                        "url: http://127.0.0.1:\(receiver.port)/berth", "timeout: 2s",
                        "credentials: \(world.credentialsFile)", "events: [pickup.Deployed]",
                    ]))
            for name in ["one.txt", "two.txt"] { try await world.deploy(name) }
            try await waitUntil("2 POSTs received") { receiver.received.count == 2 }
            try await waitUntil("nothing pending") { try await world.pending() == 0 }
            let first = receiver.received
            #expect(first.map { $0.body }.fieldValues("name") == ["one.txt", "two.txt"])
            for post in first {
                #expect(post.headers["Authorization"] == "Bearer t0ken")
                #expect(post.headers["Content-Type"] == "application/json")
                #expect(post.headers["Idempotency-Key"] == post.body["id"] as? String)
                #expect(post.body["event"] as? String == "Deployed")
            }
            // 503s: the messages wait, the error says why, then they go in order.
            receiver.failing(true)
            let names = (0..<10).map { "later-\($0).txt" }
            for name in names { try await world.deploy(name) }
            try await waitUntil("LastError names the 503") {
                (try await world.property("LastError").string ?? "").contains("HTTP 503")
            }
            try await waitUntil("10 pending") { try await world.pending() == 10 }
            receiver.failing(false)
            try await waitUntil("12 POSTs received", timeout: .seconds(20)) { receiver.received.count >= 12 }
            #expect(
                receiver.received.map { $0.body }.deduplicated.fieldValues("name") == ["one.txt", "two.txt"] + names)
            try await waitUntil("nothing pending") { try await world.pending() == 0 }
        }
    }

    @Test func unreachableEndpointKeepsMessages() async throws {
        try await TestEnvironment.with { env in
            let world = try UplinkWorld(env)
            let port = freePort()  // nobody listens
            try await world.start(
                config: UplinkWorld.config(
                    destination: "desk", kind: "http", ["url: http://127.0.0.1:\(port)/", "events: [pickup.*]"]))
            try await world.deploy("lost.txt")
            try await waitUntil("LastError names the endpoint") {
                (try await world.property("LastError").string ?? "").contains("127.0.0.1:\(port)")
            }
            #expect(try await world.pending() == 1)
            let flush = try await world.finish(world.call("Flush"))
            #expect(flush.0 == "failed")
            #expect(flush.1.contains("1 messages still pending"), "\(flush.1)")
        }
    }
}
