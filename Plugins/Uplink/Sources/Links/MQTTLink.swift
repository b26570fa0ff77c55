import BerthKit
import CMosquitto
import Glibc

/// An MQTT destination through libmosquitto: QoS 1 publishes, delivered when the broker's PUBACK arrived. Each
/// connection is one libmosquitto client with its network thread (`mosquitto_loop_start`); after any failure it is
/// destroyed whole, so nothing libmosquitto queued is resent behind the outbox's back and the order stays the
/// outbox's. A retained `online` is published on the status topic after CONNACK; the broker publishes the retained
/// last will `offline` when the connection is lost, and `close` publishes it itself.
final class MQTTLink: Link, @unchecked Sendable {
    private struct State {
        var connack: Int32? = nil
        var connected = false
        var lost: Int32? = nil
        var acked: Set<Int32> = []
    }

    let config: DestinationConfig
    let credentials: Credentials
    let identity: HostIdentity
    private var mosq: OpaquePointer?
    private let state = Condition(State())
    private var statusTopic: String {
        Topic.expand(config.statusTopic, host: identity.host, machineID: identity.machineID, plugin: "", event: "")
    }

    static let initialized: Bool = {
        mosquitto_lib_init()
        return true
    }()

    init(_ config: DestinationConfig, credentials: Credentials, identity: HostIdentity) {
        _ = Self.initialized
        self.config = config
        self.credentials = credentials
        self.identity = identity
    }

    deinit { teardown() }

    var isConnected: Bool { state.read { $0.connected } }

    func open() throws {
        if mosq != nil {
            if state.read({ $0.connected && $0.lost == nil }) { return }
            teardown()
        }
        state.update { $0 = State() }
        let clientID = config.clientID ?? (identity.machineID.isEmpty ? identity.host : identity.machineID)
        guard let m = mosquitto_new(clientID, true, Unmanaged.passUnretained(self).toOpaque()) else {
            throw LinkError("cannot create an MQTT client: \(systemErrorText(errno))")
        }
        mosq = m
        mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, Int32(MQTT_PROTOCOL_V311))
        mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1)
        _ = mosquitto_max_inflight_messages_set(m, 1000)
        // Reconnecting is the worker's business (with a fresh client); libmosquitto's own thread never does it.
        _ = mosquitto_reconnect_delay_set(m, 3600, 3600, false)
        mosquitto_connect_callback_set(m) { _, obj, rc in
            MQTTLink.from(obj)?.state.update {
                $0.connack = rc
                $0.connected = rc == 0
            }
        }
        mosquitto_disconnect_callback_set(m) { _, obj, rc in
            MQTTLink.from(obj)?.state.update {
                $0.connected = false
                $0.lost = rc == 0 ? -1 : rc
            }
        }
        mosquitto_publish_callback_set(m) { _, obj, mid in
            MQTTLink.from(obj)?.state.update { _ = $0.acked.insert(mid) }
        }
        let offline = Array("offline".utf8)
        try check(mosquitto_will_set(m, statusTopic, Int32(offline.count), offline, 1, true), "set the last will")
        if credentials.username != nil || credentials.password != nil {
            try check(
                mosquitto_username_pw_set(m, credentials.username ?? "", credentials.password), "set the username")
        }
        if let ca = config.tlsCA {
            try check(mosquitto_tls_set(m, ca, nil, nil, nil, nil), "use the CA file \"\(ca)\"")
        }
        let keepalive = Int32(config.keepalive.microsecondsClamped / 1_000_000)
        let rc = mosquitto_connect(m, config.host, Int32(config.port), keepalive)
        if rc != MOSQ_ERR_SUCCESS.rawValue {
            let reason =
                rc == MOSQ_ERR_ERRNO.rawValue ? systemErrorText(errno) : String(cString: mosquitto_strerror(rc))
            teardown()
            throw LinkError("cannot connect to \(config.displayURL): \(reason)")
        }
        try check(mosquitto_loop_start(m), "start the network thread")
        let (answered, connack) = state.wait(timeoutUSec: 10_000_000, until: { $0.connack != nil || $0.lost != nil }) {
            ($0.connack, $0.lost)
        }
        guard answered, let code = connack.0, code == 0 else {
            teardown()
            if let code = connack.0 {
                throw LinkError(
                    "\(config.displayURL) refused the connection: \(String(cString: mosquitto_connack_string(code)))")
            }
            if let lost = connack.1 {
                // A TLS or protocol failure closes the socket before any CONNACK.
                throw LinkError("\(config.displayURL) closed the connection before accepting it (\(Self.reason(lost)))")
            }
            throw LinkError("\(config.displayURL) did not answer the MQTT CONNECT within 10 s")
        }
        let online = Array("online".utf8)
        var mid: Int32 = 0
        try check(mosquitto_publish(m, &mid, statusTopic, Int32(online.count), online, 1, true), "publish the status")
    }

    func send(_ rows: [Outbox.Row]) -> (confirmed: Int, error: String?) {
        guard let m = mosq else { return (0, "not connected to \(config.displayURL)") }
        var mids: [Int32] = []
        mids.reserveCapacity(rows.count)
        var failure: String?
        for row in rows {
            var mid: Int32 = 0
            let rc =
                row.payload.utf8.withContiguousStorageIfAvailable { bytes in
                    mosquitto_publish(m, &mid, row.topic, Int32(bytes.count), bytes.baseAddress, 1, false)
                }
                ?? {
                    let bytes = Array(row.payload.utf8)
                    return mosquitto_publish(m, &mid, row.topic, Int32(bytes.count), bytes, 1, false)
                }()
            if rc != MOSQ_ERR_SUCCESS.rawValue {
                failure = "cannot publish to \(config.displayURL): \(String(cString: mosquitto_strerror(rc)))"
                break
            }
            mids.append(mid)
        }
        // Wait for every PUBACK, or for the connection to go. Delivered: the leading rows all acknowledged.
        let wanted = Set(mids)
        let timeout = max(10_000_000, config.keepalive.microsecondsClamped)
        let (_, result) = state.wait(
            timeoutUSec: timeout, until: { $0.lost != nil || wanted.isSubset(of: $0.acked) }
        ) { s -> (Int, Int32?) in
            var confirmed = 0
            for mid in mids {
                guard s.acked.contains(mid) else { break }
                confirmed += 1
            }
            s.acked.subtract(mids)
            return (confirmed, s.lost)
        }
        if failure == nil && result.0 < mids.count {
            failure =
                result.1.map { "lost the connection to \(config.displayURL) (\(Self.reason($0)))" }
                ?? "\(config.displayURL) did not acknowledge \(mids.count - result.0) messages in time"
        }
        if failure != nil { teardown() }
        return (result.0, failure)
    }

    func close() {
        if let m = mosq, isConnected {
            let offline = Array("offline".utf8)
            var mid: Int32 = 0
            if mosquitto_publish(m, &mid, statusTopic, Int32(offline.count), offline, 1, true) == 0 {
                _ = state.wait(timeoutUSec: 2_000_000, until: { $0.acked.contains(mid) || $0.lost != nil }) { _ in () }
            }
            mosquitto_disconnect(m)
        }
        teardown()
    }

    private func teardown() {
        guard let m = mosq else { return }
        mosq = nil
        mosquitto_disconnect(m)
        // Not forced: a cancelled network thread could die inside our callback, holding the state's mutex.
        mosquitto_loop_stop(m, false)
        mosquitto_destroy(m)
        state.update {
            $0.connected = false
        }
    }

    private func check(_ rc: Int32, _ doing: String) throws {
        guard rc == MOSQ_ERR_SUCCESS.rawValue else {
            let reason =
                rc == MOSQ_ERR_ERRNO.rawValue ? systemErrorText(errno) : String(cString: mosquitto_strerror(rc))
            teardown()
            throw LinkError("MQTT destination \(config.displayURL): cannot \(doing): \(reason)")
        }
    }

    private static func reason(_ rc: Int32) -> String {
        rc == -1 ? "disconnected" : String(cString: mosquitto_strerror(rc))
    }

    private static func from(_ obj: UnsafeMutableRawPointer?) -> MQTTLink? {
        obj.map { Unmanaged<MQTTLink>.fromOpaque($0).takeUnretainedValue() }
    }
}
