import BerthKit
import Glibc
import Synchronization

/// The running uplink: the outbox, one delivery worker per destination, the ingest thread that writes events to
/// the outbox in batches (one transaction per burst), and the D-Bus state (properties, rate-limited signals).
final class UplinkService: Sendable {
    struct DestinationState: Sendable {
        var connected = false
        var lastError = ""
        var failures: UInt64 = 0
        var delivered: UInt64 = 0
    }

    private struct State {
        var config: UplinkConfig
        var identity: HostIdentity
        var workers: [String: DeliveryWorker] = [:]
        var destinations: [String: DestinationState] = [:]
        var lastDeliveryUSec: UInt64 = 0
        var lastError = ""
        var object: BusObject?
        var signals = SignalLimiter()
    }

    private struct Ingest {
        var events: [(UplinkEvent, only: String?, id: String)] = []
        var stop = false
        var finished = false
    }

    let outbox: Outbox
    let logger: Logger
    private let state: Mutex<State>
    private let ingest = Condition(Ingest())
    /// Waiters of Test and Flush: called after each report, on the worker's thread.
    private let listeners = Mutex<[UInt64: @Sendable (DeliveryReport) -> Void]>([:])
    private let nextListener = Atomic<UInt64>(0)

    init(stateDirectory: String, config: UplinkConfig, logger: Logger) throws {
        outbox = try Outbox(
            path: stateDirectory + "/outbox.db", maxRows: config.maxPending, maxBytes: config.maxPendingBytes)
        self.logger = logger
        state = Mutex(State(config: config, identity: HostIdentity.current(hostOverride: config.host)))
    }

    var config: UplinkConfig { state.withLock { $0.config } }
    var identity: HostIdentity { state.withLock { $0.identity } }

    func attach(_ object: BusObject) {
        state.withLock { $0.object = object }
        publish()
    }

    /// Starts the destinations' workers, then the ingest thread.
    func start() throws {
        try apply(config, previous: nil, identity: identity)
        try OSThread.start(name: "uplink-ingest") { [self] in runIngest() }
    }

    /// Starts, stops or replaces workers for what changed between `previous` and `config`. Every credentials file
    /// is read before anything changes: a bad one leaves everything as it was.
    private func apply(_ config: UplinkConfig, previous: UplinkConfig?, identity: HostIdentity) throws {
        var started: [DeliveryWorker] = []
        for destination in config.destinations {
            // The route (`events`) is read when messages are written: changing it alone keeps the connection.
            if let previous, previous.destinations.contains(where: { $0.sameConnection(destination) }),
                previous.retryInitial == config.retryInitial, previous.retryMax == config.retryMax,
                previous.host == config.host
            {
                continue
            }
            let credentials =
                try destination.credentials.map { try Credentials.load($0, destination: destination.name) }
                ?? Credentials()
            let worker = DeliveryWorker(
                config: destination, outbox: outbox, retryInitial: config.retryInitial, retryMax: config.retryMax,
                makeLink: {
                    switch destination.kind {
                    case .mqtt: MQTTLink(destination, credentials: credentials, identity: identity)
                    case .http: HTTPLink(destination, credentials: credentials)
                    }
                },
                report: { [weak self] in self?.received($0) })
            started.append(worker)
        }
        let names = Set(config.destinations.map(\.name))
        let replaced = state.withLock { s -> [DeliveryWorker] in
            s.config = config
            s.identity = identity
            var old: [DeliveryWorker] = []
            for worker in started {
                if let previous = s.workers[worker.config.name] { old.append(previous) }
                s.workers[worker.config.name] = worker
                s.destinations[worker.config.name] = DestinationState()
            }
            for name in s.workers.keys where !names.contains(name) {
                old.append(s.workers.removeValue(forKey: name)!)
                s.destinations[name] = nil
            }
            return old
        }
        let outbox = outbox
        let logger = logger
        let prune: @Sendable () async -> Void = {
            do {
                let gone = try await OSThread.run(name: "uplink-prune") { try outbox.removeDestinations(except: names) }
                if gone > 0 { logger.warning("uplink dropped \(gone) pending messages of removed destinations") }
            } catch { logger.error("uplink: \(error)") }
        }
        if replaced.isEmpty {
            for worker in started { try worker.start() }
            Task { await prune() }
            return
        }
        // The old worker of a replaced destination ends before the new one starts: one sender per route.
        let group = replaced
        let begin = started
        Task {
            for worker in group { await worker.stop() }
            await prune()
            for worker in begin where self.isRunning(worker) {
                do { try worker.start() } catch { logger.error("uplink destination \(worker.config.name): \(error)") }
            }
            self.publish()
        }
    }

    /// Whether `worker` is still the current one of its destination (not replaced again, not stopped).
    private func isRunning(_ worker: DeliveryWorker) -> Bool {
        state.withLock { $0.workers[worker.config.name] === worker }
    }

    func reload(_ config: UplinkConfig) throws {
        try apply(config, previous: self.config, identity: HostIdentity.current(hostOverride: config.host))
        outbox.setLimits(rows: config.maxPending, bytes: config.maxPendingBytes)
    }

    func stop() async {
        ingest.update { $0.stop = true }
        let workers = state.withLock { s -> [DeliveryWorker] in
            defer { s.workers = [:] }
            return Array(s.workers.values)
        }
        _ = try? await OSThread.run(name: "uplink-stop") { [ingest] in
            ingest.wait(timeoutUSec: 5_000_000, until: { $0.finished }) { _ in () }
        }
        for worker in workers { await worker.stop() }
    }

    // MARK: Events in

    /// Queues an event for every destination whose route takes it (or only `destination`); written by the ingest
    /// thread. Returns the message id.
    @discardableResult
    func enqueue(_ event: UplinkEvent, only destination: String? = nil) -> String {
        let id = UplinkMessage.newID()
        ingest.update { $0.events.append((event, destination, id)) }
        return id
    }

    private func runIngest() {
        while true {
            let (_, batch) = ingest.wait(timeoutUSec: 1_000_000, until: { !$0.events.isEmpty || $0.stop }) { q in
                defer { q.events = [] }
                return (q.events, q.stop)
            }
            if !batch.0.isEmpty { write(batch.0) }
            if batch.1 { break }
        }
        ingest.update { $0.finished = true }
    }

    private func write(_ events: [(UplinkEvent, only: String?, id: String)]) {
        let (config, identity, workers) = state.withLock { ($0.config, $0.identity, $0.workers) }
        var rows: [Outbox.New] = []
        var touched: Set<String> = []
        for (event, only, id) in events {
            let payload = UplinkMessage.payload(id: id, event: event, identity: identity)
            for d in config.destinations where only == d.name || (only == nil && d.routes(event.name)) {
                let topic =
                    d.kind == .mqtt
                    ? Topic.expand(
                        d.topic, host: identity.host, machineID: identity.machineID, plugin: event.plugin,
                        event: event.event) : ""
                rows.append(
                    Outbox.New(
                        id: id, destination: d.name, event: event.name, topic: topic, payload: payload,
                        createdUSec: event.timeUSec))
                touched.insert(d.name)
            }
        }
        do {
            let dropped = try outbox.add(rows)
            if dropped > 0 { logger.warning("uplink outbox is full: dropped the \(dropped) oldest messages") }
        } catch {
            logger.error("uplink cannot write \(rows.count) messages to the outbox: \(error)")
            state.withLock { $0.lastError = "\(error)" }
        }
        for name in touched { workers[name]?.wake() }
        publish()
    }

    // MARK: Reports from workers

    private func received(_ report: DeliveryReport) {
        let now = SystemClock.wallUSec()
        var emit: [(String, [DBusValue])] = []
        let object = state.withLock { s -> BusObject? in
            var d = s.destinations[report.destination] ?? DestinationState()
            switch report.kind {
            case .delivered(let rows):
                d.delivered += UInt64(rows.count)
                s.lastDeliveryUSec = now
                for row in rows where s.signals.allow("Delivered", now: now) {
                    emit.append(("Delivered", [.string(row.id), .string(report.destination)]))
                }
            case .failed(let row, let error):
                d.failures += 1
                let text = "uplink destination \"\(report.destination)\": \(error)"
                d.lastError = text
                s.lastError = text
                if s.signals.allow("DeliveryFailed", now: now) {
                    emit.append(
                        ("DeliveryFailed", [.string(row?.id ?? ""), .string(report.destination), .string(text)]))
                }
            case .connection(let up):
                d.connected = up
            }
            s.destinations[report.destination] = d
            return s.object
        }
        if case .failed(_, let error) = report.kind {
            logger.warning("uplink destination \"\(report.destination)\": \(error)")
        }
        for (name, arguments) in emit { object?.emit(name, arguments) }
        publish()
        for listener in listeners.withLock({ Array($0.values) }) { listener(report) }
    }

    /// Properties from the current state (any thread).
    func publish() {
        let (object, rows, dropped, lastDelivery, lastError) = state.withLock { s in
            (
                s.object,
                s.config.destinations.map { d -> [DBusValue] in
                    [
                        .string(d.name), .string(d.kind.rawValue), .string(d.displayURL),
                        .bool(s.destinations[d.name]?.connected ?? false),
                    ]
                }, outbox.dropped, s.lastDeliveryUSec, s.lastError
            )
        }
        object?.set([
            ("Destinations", .structs("(sssb)", rows)), ("Pending", .uint64(UInt64(outbox.pending))),
            ("Dropped", .uint64(dropped)), ("LastDeliveryUSec", .uint64(lastDelivery)),
            ("LastError", .string(lastError)),
        ])
    }

    func destinationStates() -> [String: DestinationState] { state.withLock { $0.destinations } }
    var lastDeliveryUSec: UInt64 { state.withLock { $0.lastDeliveryUSec } }

    // MARK: Flush, Test

    /// Calls `body` with each report until `body` returns true or `timeout` passes; false on timeout.
    func waitForReports(
        timeout: Duration, check: @escaping @Sendable () -> Bool,
        _ body: @escaping @Sendable (DeliveryReport) -> Bool
    ) async throws -> Bool {
        let id = nextListener.add(1, ordering: .relaxed).newValue
        let done = Mutex(false)
        listeners.withLock { $0[id] = { report in if body(report) { done.withLock { $0 = true } } } }
        defer { _ = listeners.withLock { $0.removeValue(forKey: id) } }
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if done.withLock({ $0 }) || check() { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return done.withLock { $0 } || check()
    }

    func wake(flush: Bool) {
        for worker in state.withLock({ Array($0.workers.values) }) { worker.wake(flush: flush) }
    }

    func worker(_ name: String) -> DeliveryWorker? { state.withLock { $0.workers[name] } }
}

/// At most `perSecond` signals of each name per second, so that a broker outage cannot flood the bus; the rest
/// are counted (the properties and the outbox still say everything).
struct SignalLimiter {
    var perSecond = 50
    private var window: [String: (start: UInt64, count: Int)] = [:]
    private(set) var suppressed: UInt64 = 0

    mutating func allow(_ name: String, now: UInt64) -> Bool {
        var w = window[name] ?? (now, 0)
        if now - w.start >= 1_000_000 { w = (now, 0) }
        w.count += 1
        window[name] = w
        if w.count > perSecond {
            suppressed += 1
            return false
        }
        return true
    }
}
