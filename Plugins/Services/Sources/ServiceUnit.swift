import BerthKit
import Synchronization

/// One service on the bus: its `org.berth.Berth1.Service` object, the supervised process of its current
/// definition, and its lock. A redefinition swaps the process (the old one is stopped first) and keeps the object
/// and the lock; the object's properties follow the process's snapshots.
final class ServiceUnit: Sendable {
    let name: String
    let object: BusObject
    private let state: Mutex<State>

    private struct State {
        var definition: ServiceDefinition
        var process: SupervisedProcess
        var follower: Task<Void, Never>?
        var lockOwner = ""
        /// The lock owner as a person knows it: `berthctl (pid 4242, :1.44)`.
        var lockOwnerText = ""
        var tracker: PeerTracker?
        var waiting: [String] = []
        var processes: [UnitProcess] = []
    }
    /// Called with the name when the service reaches `inactive` or `failed` from a running state.
    private let ended: @Sendable (String) -> Void
    /// Called after every change of state (the registry refreshes `Processes`).
    private let changed: @Sendable () -> Void

    init(
        definition: ServiceDefinition, process: SupervisedProcess, object: BusObject,
        ended: @escaping @Sendable (String) -> Void = { _ in }, changed: @escaping @Sendable () -> Void = {}
    ) {
        name = definition.name
        self.object = object
        self.ended = ended
        self.changed = changed
        state = Mutex(State(definition: definition, process: process))
        publishDefinition(definition)
        follow(process)
    }

    private func publishDefinition(_ definition: ServiceDefinition) {
        object.set([
            ("Description", .string(definition.description)),
            ("After", .array(element: "s", definition.after.map(DBusValue.string))),
            ("Requires", .array(element: "s", definition.requires.map(DBusValue.string))),
        ])
    }

    /// The services this one is waiting for before it starts (empty when it is not waiting).
    var waitingFor: [String] { state.withLock { $0.waiting } }

    func setWaiting(_ names: [String]) {
        let changed = state.withLock { s -> Bool in
            guard s.waiting != names else { return false }
            s.waiting = names
            return true
        }
        if changed { object.set("WaitingFor", .array(element: "s", names.map(DBusValue.string))) }
    }

    /// Publishes the live processes (main first), when they changed.
    func setProcesses(_ list: [UnitProcess]) {
        let changed = state.withLock { s -> Bool in
            guard s.processes != list else { return false }
            s.processes = list
            return true
        }
        guard changed else { return }
        object.set(
            "Processes",
            .array(
                element: "(us)",
                list.map { DBusValue.structure([.uint32(UInt32(max(0, $0.pid))), .string($0.command)]) }))
    }

    var definition: ServiceDefinition { state.withLock { $0.definition } }
    var process: SupervisedProcess { state.withLock { $0.process } }
    var lockOwner: String { state.withLock { $0.lockOwner } }

    /// The endpoint the child published, else the configured one.
    var endpoint: String {
        let (definition, process) = state.withLock { ($0.definition, $0.process) }
        let published = process.snapshot.endpoint
        return published.isEmpty ? definition.endpoint : published
    }

    /// Swaps in a new definition and its (inactive) process; stops the old process first.
    func replace(definition: ServiceDefinition, process: SupervisedProcess) async {
        let old = state.withLock { $0.process }
        await old.stop()
        let follower = state.withLock { s -> Task<Void, Never>? in
            let f = s.follower
            s.definition = definition
            s.process = process
            return f
        }
        follower?.cancel()
        publishDefinition(definition)
        follow(process)
    }

    /// Publishes the process's snapshots as properties, until it is replaced or the unit is dropped. Each change
    /// publishes the latest snapshot (changes that follow each other quickly are coalesced, never reordered).
    private func follow(_ process: SupervisedProcess) {
        let task = Task { [weak self] in
            var wasRunning = false
            for await snapshot in process.snapshots() {
                if Task.isCancelled { break }
                self?.publish()
                let running = snapshot.state != .inactive && snapshot.state != .failed
                // Ended on its own or by hand: the registry stops what requires it (unless a stop by hand did).
                if wasRunning && !running, let self { self.ended(self.name) }
                wasRunning = running
                self?.changed()
            }
        }
        state.withLock { $0.follower = task }
    }

    /// Sets the properties from the current process's latest snapshot. Jobs call it before they end, so a client
    /// that reads State after JobRemoved sees the state the job reached.
    func publish() {
        state.withLock { s in
            let snapshot = s.process.snapshot
            let endpoint = snapshot.endpoint.isEmpty ? s.definition.endpoint : snapshot.endpoint
            object.set([
                ("State", .string(snapshot.state.rawValue)), ("SubState", .string(snapshot.subState.rawValue)),
                ("MainPID", .uint32(UInt32(max(0, snapshot.mainPID)))), ("Endpoint", .string(endpoint)),
                ("Restarts", .uint32(snapshot.restarts)), ("ExitStatus", .int32(snapshot.exitStatus)),
                ("ActiveSinceUSec", .uint64(snapshot.activeSinceUSec)), ("StatusText", .string(snapshot.statusText)),
                ("Result", .string(snapshot.result.rawValue)), ("LastError", .string(snapshot.lastError)),
            ])
        }
    }

    // MARK: - Lock

    /// Throws `Busy` naming the owner when another client holds the lock.
    func checkOwner(_ sender: String, _ action: String) throws {
        let (owner, text) = state.withLock { ($0.lockOwner, $0.lockOwnerText) }
        if !owner.isEmpty && owner != sender {
            throw BerthError.busy(
                "service \"\(name)\" is locked by \(text.isEmpty ? owner : text); \(sender) cannot \(action) it")
        }
    }

    /// "berthctl (pid 4242, :1.44)": the program and pid behind a bus name, which the bus driver knows; the
    /// unique name alone when the peer is gone.
    static func describePeer(_ unique: String, connection: BusConnection) async -> String {
        guard
            let reply = try? await connection.call(
                "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetConnectionUnixProcessID",
                [.string(unique)], timeout: .seconds(2)),
            let pid = reply.first?.uint32, pid > 0
        else { return unique }
        let comm = ((try? FileSystem.readKernelText("/proc/\(pid)/comm")) ?? nil) ?? "?"
        return "\(comm.split(separator: "\n").first ?? "?") (pid \(pid), \(unique))"
    }

    /// Takes the lock for `sender`, dropped when its connection closes. Locking again by the owner is a no-op.
    func lock(sender: String, connection: BusConnection) async throws {
        let taken = try state.withLock { s -> Bool in
            if s.lockOwner == sender { return false }
            if !s.lockOwner.isEmpty {
                let holder = s.lockOwnerText.isEmpty ? s.lockOwner : s.lockOwnerText
                throw BerthError.busy("service \"\(name)\" is already locked by \(holder)")
            }
            s.lockOwner = sender
            return true
        }
        guard taken else { return }
        // The holder as errors name it (the program and pid), known before the lock shows.
        let text = await Self.describePeer(sender, connection: connection)
        state.withLock { s in if s.lockOwner == sender { s.lockOwnerText = text } }
        object.set("LockedBy", .string(sender))
        do {
            let tracker = try await connection.trackPeer(sender) { [weak self] in self?.release(owner: sender) }
            let keep = state.withLock { s -> Bool in
                guard s.lockOwner == sender else { return false }
                s.tracker = tracker
                return true
            }
            if !keep { tracker.cancel() }
        } catch {
            release(owner: sender)
            throw error
        }
    }

    /// Drops the lock if `sender` owns it; `Busy` when another client does.
    func unlock(sender: String) throws {
        try checkOwner(sender, "unlock")
        release(owner: sender)
    }

    /// Drops the lock held by `owner` (no-op if it has moved on).
    func release(owner: String) {
        let tracker = state.withLock { s -> PeerTracker?? in
            guard s.lockOwner == owner, !owner.isEmpty else { return .none }
            s.lockOwner = ""
            s.lockOwnerText = ""
            defer { s.tracker = nil }
            return .some(s.tracker)
        }
        guard case .some(let t) = tracker else { return }
        t?.cancel()
        object.set("LockedBy", .string(""))
    }

    /// Stops the process and the property updates; the object is removed by the caller.
    func shutdown() async {
        let (process, follower, tracker) = state.withLock { ($0.process, $0.follower, $0.tracker) }
        await process.stop()
        follower?.cancel()
        tracker?.cancel()
    }
}
