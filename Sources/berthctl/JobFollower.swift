import BerthKit

/// Follows one berthd job to its end, and never waits for ever: the wait ends with the job's `JobRemoved`, or with an
/// error when the daemon that runs the job leaves the bus (its name changes owner: killed, crashed, replaced by a new
/// `berthctl up`), or when the job's object is gone without a `JobRemoved`.
///
/// Subscribe before the call that starts the job (a job may end before its reply is read), then `follow` it:
///
///     let follower = try await JobFollower.subscribe(connection)
///     let reply = try await connection.berth(...)            // (u id, o path)
///     let result = try await follower.follow(reply) { signal in ... }
struct JobFollower {
    enum Incoming: Sendable {
        case signal(BusSignalMessage)
        /// `org.berth.Berth1` changed owner: `old` left (empty when the name had none).
        case ownerChanged(old: String, new: String)
        /// Time to check that the job's object still exists.
        case tick
    }

    let connection: BusConnection
    let incoming: AsyncStream<Incoming>
    private let feeders: [Task<Void, Never>]
    /// How often the job object is checked when no signal arrives.
    static let checkInterval: Duration = .seconds(2)

    static func subscribe(_ connection: BusConnection) async throws -> JobFollower {
        let berth = try await connection.signals(sender: Berth.name)
        let owners = try await connection.signals(
            sender: "org.freedesktop.DBus", path: "/org/freedesktop/DBus", interface: "org.freedesktop.DBus",
            member: "NameOwnerChanged")
        let (stream, continuation) = AsyncStream.makeStream(of: Incoming.self, bufferingPolicy: .unbounded)
        let feeders = [
            Task {
                for await signal in berth { continuation.yield(.signal(signal)) }
                continuation.finish()
            },
            Task {
                for await signal in owners where signal.arguments.first?.string == Berth.name {
                    let old = signal.arguments.count > 1 ? signal.arguments[1].string ?? "" : ""
                    let new = signal.arguments.count > 2 ? signal.arguments[2].string ?? "" : ""
                    continuation.yield(.ownerChanged(old: old, new: new))
                }
            },
            Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: checkInterval)
                    continuation.yield(.tick)
                }
            },
        ]
        return JobFollower(connection: connection, incoming: stream, feeders: feeders)
    }

    /// What the caller's handler says about a signal from the job's daemon.
    enum Verdict {
        case keepWaiting
        /// Stop following now (the caller has what it needs); `follow` returns `result`.
        case stop(result: String)
        /// This is the job's end, but keep following the daemon's signals (something it sends after the job ended).
        case keepWaitingAfterEnd
    }

    /// Waits until the job of `reply` (`(u id, o path)`) ends and returns its result (`done`, `failed`, `canceled`,
    /// `timeout`). `handle` sees every signal of the daemon that runs the job, in order (Log lines included); it may
    /// end the wait early. Throws a CLIError when the daemon leaves the bus or the job disappears.
    func follow(
        _ reply: [DBusValue], what: String, _ handle: (BusSignalMessage) async throws -> Verdict = { _ in .keepWaiting }
    ) async throws -> String {
        defer { for feeder in feeders { feeder.cancel() } }
        let id = reply.first?.uint32 ?? 0
        let path = reply.count > 1 ? reply[1].string ?? "" : ""
        // The daemon that answered: only its signals count (a new berthd numbers its jobs from 1 again).
        let owner = try await currentOwner()
        guard let owner else { throw left(what, id) }
        var missing = false
        var ended = false
        for await event in incoming {
            switch event {
            case .signal(let signal):
                guard signal.sender == owner else { continue }
                switch try await handle(signal) {
                case .stop(let result): return result
                case .keepWaitingAfterEnd:
                    ended = true
                    continue
                case .keepWaiting: break
                }
                if signal.member == "JobRemoved", signal.interface == Berth.manager,
                    signal.arguments.first?.uint32 == id
                {
                    return signal.arguments.count > 3 ? signal.arguments[3].string ?? "failed" : "failed"
                }
            case .ownerChanged(let old, _):
                if old == owner { throw left(what, id) }
            case .tick:
                if ended { continue }
                // Gone twice in a row: once may be a JobRemoved still on its way to this stream.
                let exists = try await jobExists(path)
                if !exists && missing { throw CLIError("\(what): job \(id) (\(path)) disappeared without a result") }
                missing = !exists
            }
        }
        throw CLIError("\(what): the connection to the bus closed while job \(id) was running")
    }

    private func left(_ what: String, _ id: UInt32) -> CLIError {
        CLIError("\(what): berthd left the bus while job \(id) was running; its result is unknown (see `berthctl status`)")
    }

    private func currentOwner() async throws -> String? {
        do {
            let reply = try await connection.call(
                "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetNameOwner",
                [.string(Berth.name)], timeout: .seconds(5))
            return reply.first?.string
        } catch let error as DBusError where error.name == "org.freedesktop.DBus.Error.NameHasNoOwner" {
            return nil
        }
    }

    private func jobExists(_ path: String) async throws -> Bool {
        do {
            _ = try await connection.berthProperty(path, "org.berth.Berth1.Job", "State")
            return true
        } catch let error as DBusError
            where ["org.freedesktop.DBus.Error.UnknownObject", "org.freedesktop.DBus.Error.UnknownInterface",
                "org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner"]
            .contains(error.name)
        {
            return false
        } catch {
            return true  // a slow answer is not a missing job; the owner check covers a daemon that is gone
        }
    }

    /// The job's error message, for a job that did not end `done`.
    func errorMessage(_ reply: [DBusValue]) async -> String {
        let path = reply.count > 1 ? reply[1].string ?? "" : ""
        return (try? await connection.berthProperty(path, "org.berth.Berth1.Job", "ErrorMessage").string) ?? ""
    }
}
