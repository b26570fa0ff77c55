import BerthKit
import Glibc

/// What a worker reports, from its thread.
struct DeliveryReport: Sendable {
    enum Kind: Sendable {
        case delivered([Outbox.Row])
        case failed(Outbox.Row?, String)
        case connection(Bool)
    }
    var destination: String
    var kind: Kind
}

/// One destination's delivery loop on its own thread: the oldest rows of the outbox for this destination go out in
/// order, in batches; the confirmed ones leave the outbox; a failure waits (retry_initial, doubling to retry_max)
/// and tries again from the first unconfirmed row. `wake` ends a wait early (new rows, Flush), `stop` ends the loop.
final class DeliveryWorker: Sendable {
    private struct Control {
        var work = 0
        var flush = false
        var stop = false
        var finished = false
    }

    let config: DestinationConfig
    private let outbox: Outbox
    private let control = Condition(Control())
    private let makeLink: @Sendable () throws -> any Link
    private let report: @Sendable (DeliveryReport) -> Void
    private let retry: (initial: UInt64, max: UInt64)
    static let batch = 500

    init(
        config: DestinationConfig, outbox: Outbox, retryInitial: Duration, retryMax: Duration,
        makeLink: @escaping @Sendable () throws -> any Link, report: @escaping @Sendable (DeliveryReport) -> Void
    ) {
        self.config = config
        self.outbox = outbox
        self.makeLink = makeLink
        self.report = report
        self.retry = (retryInitial.microsecondsClamped, retryMax.microsecondsClamped)
    }

    func start() throws {
        try OSThread.start(name: "uplink-\(config.name)") { [self] in run() }
    }

    /// New rows are in the outbox (or Flush: `flush` also ends a retry wait).
    func wake(flush: Bool = false) {
        control.update {
            $0.work += 1
            if flush { $0.flush = true }
        }
    }

    /// Ends the loop; returns once the thread has closed its link (or after `timeout`).
    func stop(timeout: Duration = .seconds(5)) async {
        control.update { $0.stop = true }
        let usec = timeout.microsecondsClamped
        _ = try? await OSThread.run(name: "uplink-stop") { [control] in
            control.wait(timeoutUSec: usec, until: { $0.finished }) { _ in () }
        }
    }

    private func run() {
        var link: (any Link)?
        var backoff: UInt64 = 0
        var wasConnected = false
        func connection(_ now: Bool) {
            if now != wasConnected {
                wasConnected = now
                report(DeliveryReport(destination: config.name, kind: .connection(now)))
            }
        }
        // Keep-alive wait for MQTT (the status topic says online while connected); HTTP waits for work.
        let idle: UInt64 = 1_000_000
        while !control.read({ $0.stop }) {
            var failedRow: Outbox.Row?
            do {
                if link == nil { link = try makeLink() }
                try link!.open()
                connection(link!.isConnected || config.kind == .http)
                let rows = try outbox.next(config.name, limit: Self.batch)
                if rows.isEmpty {
                    if config.kind == .mqtt && !link!.isConnected {
                        throw LinkError("lost the connection to \(config.displayURL)")
                    }
                    let seen = control.read { $0.work }
                    _ = control.wait(timeoutUSec: idle, until: { $0.work != seen || $0.stop }) { $0.flush = false }
                    continue
                }
                let (confirmed, error) = link!.send(rows)
                if confirmed > 0 {
                    let done = Array(rows.prefix(confirmed))
                    try outbox.delivered(done)
                    report(DeliveryReport(destination: config.name, kind: .delivered(done)))
                    backoff = 0
                }
                if let error {
                    if confirmed < rows.count {
                        failedRow = rows[confirmed]
                        try? outbox.failed(rows[confirmed], error: error)
                    }
                    throw LinkError(error)
                }
            } catch {
                let text = (error as? LinkError)?.description ?? "\(error)"
                report(DeliveryReport(destination: config.name, kind: .failed(failedRow, text)))
                connection(false)
                backoff = backoff == 0 ? retry.initial : min(retry.max, backoff * 2)
                // Wait out the backoff; Flush and stop end it early.
                _ = control.wait(timeoutUSec: backoff, until: { $0.flush || $0.stop }) { $0.flush = false }
            }
        }
        link?.close()
        connection(false)
        control.update { $0.finished = true }
    }
}
