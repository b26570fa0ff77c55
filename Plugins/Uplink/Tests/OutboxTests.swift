import BerthKit
import BerthTestSupport
import Foundation
import Testing

@testable import UplinkPlugin

/// The outbox on a real SQLite file.
struct OutboxTests {
    func withOutbox(rows: Int, bytes: Int = 1 << 30, _ body: (Outbox, String) throws -> Void) throws {
        let dir = NSTemporaryDirectory() + "uplink-outbox-\(UplinkMessage.newID())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try body(try Outbox(path: dir + "/outbox.db", maxRows: rows, maxBytes: bytes), dir)
    }

    func messages(_ n: Int, destination: String = "d", from start: Int = 0) -> [Outbox.New] {
        (start..<start + n).map {
            Outbox.New(
                id: "m\($0)", destination: destination, event: "pickup.Deployed", topic: "t", payload: "{\"n\":\($0)}",
                createdUSec: UInt64($0))
        }
    }

    @Test func keepsOrderAndSurvivesReopening() throws {
        try withOutbox(rows: 1000) { outbox, dir in
            try outbox.add(messages(5))
            try outbox.add(messages(3, destination: "e", from: 5))
            #expect(try outbox.next("d", limit: 10).map(\.id) == ["m0", "m1", "m2", "m3", "m4"])
            try outbox.delivered(Array(try outbox.next("d", limit: 2)))
            let again = try Outbox(path: dir + "/outbox.db", maxRows: 1000, maxBytes: 1 << 30)
            #expect(again.pending == 6)
            #expect(try again.next("d", limit: 10).map(\.id) == ["m2", "m3", "m4"])
            #expect(try again.next("e", limit: 10).map(\.id) == ["m5", "m6", "m7"])
        }
    }

    @Test func capDropsTheOldestAndCountsThem() throws {
        try withOutbox(rows: 10) { outbox, dir in
            try outbox.add(messages(8))
            let dropped = try outbox.add(messages(5, from: 8))
            #expect(dropped == 3)
            #expect(outbox.pending == 10)
            #expect(outbox.dropped == 3)
            #expect(try outbox.next("d", limit: 100).map(\.id).first == "m3")
            #expect(try Outbox(path: dir + "/outbox.db", maxRows: 10, maxBytes: 1 << 30).dropped == 3)
        }
    }

    @Test func byteCapDropsTheOldest() throws {
        try withOutbox(rows: 1000, bytes: 4096) { outbox, _ in
            let big = (0..<10).map {
                Outbox.New(
                    id: "b\($0)", destination: "d", event: "e.E", topic: "",
                    payload: String(repeating: "x", count: 1000),
                    createdUSec: 0)
            }
            try outbox.add(big)
            #expect(outbox.pending == 4)
            #expect(outbox.pendingBytes <= 4096)
            #expect(try outbox.next("d", limit: 100).map(\.id) == ["b6", "b7", "b8", "b9"])
        }
    }
}
