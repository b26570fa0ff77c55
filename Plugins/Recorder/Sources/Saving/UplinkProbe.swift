import BerthKit

/// Asks the uplink plugin's D-Bus object (`org.berth.Berth1.Uplink` at `/org/berth/Berth1/uplink`, issue 16) which
/// recordings still have messages waiting in its outbox, for `saving.wait_for_uplink`. The recorder does not import
/// the uplink: it calls `ListPending(u limit)` over the bus like any client and looks for recording ids (UUIDs) in
/// whatever the pending messages hold (their JSON carries the `Detection` signal's `recording_id`). No uplink object
/// on the bus means nothing is routed, so nothing is waited for.
struct UplinkProbe: Sendable {
    let connection: BusConnection
    /// The uplink's bus name: `org.berth.Berth1` (it is a plugin of berthd).
    let destination: String
    static let path = "/org/berth/Berth1/uplink"
    static let interface = "org.berth.Berth1.Uplink"
    /// Pending messages asked for at once; a full answer may have left some out, so it counts as "all pending".
    static let limit: UInt32 = 100_000

    enum Answer: Sendable, Equatable {
        /// No uplink object: nothing is routed.
        case noUplink
        /// These recording ids appear in pending messages.
        case pending(Set<String>)
        /// The outbox holds more than `limit` messages: any recording may still be among them.
        case unknown
    }

    /// Errors that mean there is no uplink to wait for.
    private static let absent: Set<String> = [
        "org.freedesktop.DBus.Error.UnknownObject", "org.freedesktop.DBus.Error.UnknownInterface",
        "org.freedesktop.DBus.Error.UnknownMethod", "org.freedesktop.DBus.Error.ServiceUnknown",
        "org.freedesktop.DBus.Error.NameHasNoOwner",
    ]

    func pendingRecordings() async throws -> Answer {
        let reply: [DBusValue]
        do {
            reply = try await connection.call(
                destination, Self.path, Self.interface, "ListPending", [.uint32(Self.limit)], timeout: .seconds(10))
        } catch let error as DBusError where Self.absent.contains(error.name) {
            return .noUplink
        }
        if let items = reply.first?.items, items.count >= Int(Self.limit) { return .unknown }
        var ids: Set<String> = []
        for value in reply { Self.collectIDs(value, into: &ids) }
        return .pending(ids)
    }

    /// Every UUID-shaped token in every string of `value`.
    static func collectIDs(_ value: DBusValue, into ids: inout Set<String>) {
        switch value.unwrapped {
        case .string(let s): ids.formUnion(uuids(in: s))
        case .array(_, let items), .structure(let items): for item in items { collectIDs(item, into: &ids) }
        case .dictionary(_, _, let entries):
            for entry in entries {
                collectIDs(entry.key, into: &ids)
                collectIDs(entry.value, into: &ids)
            }
        default: break
        }
    }

    /// Tokens of 8-4-4-4-12 hexadecimal digits (recording ids), lower-cased.
    static func uuids(in text: String) -> [String] {
        var found: [String] = []
        var token: [UInt8] = []
        func flush() {
            var start = 0
            while start + 36 <= token.count {
                let window = token[start..<start + 36]
                let dashes = [8, 13, 18, 23]
                if window.enumerated().allSatisfy({
                    dashes.contains($0.offset) ? $0.element == UInt8(ascii: "-") : isHex($0.element)
                }) {
                    found.append(String(decoding: window, as: UTF8.self).lowercased())
                    start += 36
                } else {
                    start += 1
                }
            }
            token.removeAll(keepingCapacity: true)
        }
        for byte in text.utf8 {
            if isHex(byte) || byte == UInt8(ascii: "-") { token.append(byte) } else { flush() }
        }
        flush()
        return found
    }

    private static func isHex(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x66) || (b >= 0x41 && b <= 0x46)
    }
}
