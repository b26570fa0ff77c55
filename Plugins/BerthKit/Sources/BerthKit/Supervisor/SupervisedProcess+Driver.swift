import Glibc

extension SupervisedProcess {
    typealias Event = SupervisorStateMachine.Event

    /// What to do after the lock is released: resume waiters, publish snapshots.
    struct Effects {
        var starts: [(CheckedContinuation<Void, any Error>, BerthError?)] = []
        var stops: [CheckedContinuation<Void, Never>] = []
        var changes: [SupervisorSnapshot] = []
        var streams: [AsyncStream<SupervisorSnapshot>.Continuation] = []
    }

    /// Runs on the epoll thread: `prepare` may update the core and returns the first events; each event goes
    /// through the state machine and its actions are performed (actions may queue more events). A snapshot is
    /// published after every event that changed it.
    func apply(_ prepare: (inout Core) -> [Event]) {
        var effects = Effects()
        core.withLock { core in
            var queue = prepare(&core)
            publishIfChanged(&core, &effects)
            while !queue.isEmpty {
                let event = queue.removeFirst()
                let actions = core.machine.handle(event, now: Self.now())
                for action in actions { perform(action, core: &core, queue: &queue, effects: &effects) }
                // A run left over in a state without processes (the group survived SIGKILL and was given up on).
                let machine = core.machine
                if core.run != nil && (machine.state == .inactive || machine.state == .failed
                    || machine.subState == .autoRestart) {
                    endRun(&core)
                }
                publishIfChanged(&core, &effects)
            }
            effects.streams = Array(core.streams.values)
        }
        // Observers first: when start() or stop() returns, every observer has seen the state it returns in.
        for snapshot in effects.changes {
            onChange?(snapshot)
            for stream in effects.streams { stream.yield(snapshot) }
        }
        for (continuation, error) in effects.starts {
            if let error { continuation.resume(throwing: error) } else { continuation.resume() }
        }
        for continuation in effects.stops { continuation.resume() }
    }

    private func publishIfChanged(_ core: inout Core, _ effects: inout Effects) {
        let machine = core.machine
        let snapshot = SupervisorSnapshot(
            state: machine.state, subState: machine.subState, mainPID: machine.mainPID, restarts: machine.restarts,
            exitStatus: machine.exitStatus, activeSinceUSec: machine.activeSinceUSec, endpoint: core.endpoint,
            statusText: core.statusText, result: machine.result, lastError: machine.lastError)
        guard snapshot != core.published else { return }
        core.published = snapshot
        effects.changes.append(snapshot)
    }

    private func perform(
        _ action: SupervisorStateMachine.Action, core: inout Core, queue: inout [Event], effects: inout Effects
    ) {
        switch action {
        case .spawn:
            queue.append(spawn(&core))
        case .signalGroup(let signal):
            if let run = core.run {
                kill(-run.pgid, signal)
                // Descendants that left the group (setsid) carry the unit's marker: they get the signal too.
                for pid in supervisor.escapedProcesses(of: spec.name, group: run.pgid) { kill(pid, signal) }
                supervisor.signalCgroup(spec.name, signal)
            }
        case .awaitGroupGone:
            core.groupCheckDelayUSec = 500
            if let event = checkGroup(&core) { queue.append(event) }
        case .armTimer(let timer, let delay):
            if let token = core.timer { watcher.cancel(token) }
            core.timerGeneration += 1
            let generation = core.timerGeneration
            core.timer = watcher.after(.microseconds(delay)) { [weak self] in
                self?.apply { core in core.timerGeneration == generation ? [.timerFired(timer)] : [] }
            }
        case .cancelTimer:
            if let token = core.timer { watcher.cancel(token) }
            core.timer = nil
            core.timerGeneration += 1
        case .finishStart(let error):
            effects.starts += core.startWaiters.map { ($0, error) }
            core.startWaiters = []
        case .finishStop:
            effects.stops += core.stopWaiters
            core.stopWaiters = []
        }
    }

    /// `.groupGone` when no process of the run's group is left, nor any marked process of the unit that left the
    /// group (then the run is cleaned up); otherwise checks
    /// again after a short backoff (0.5 ms doubling to 50 ms). Zombies count as members until reaped: the
    /// daemon, a child subreaper, reaps the group's orphans as SIGCHLD reports them.
    func checkGroup(_ core: inout Core) -> Event? {
        guard let run = core.run, run.reaped else { return core.run == nil ? .groupGone : nil }
        if kill(-run.pgid, 0) != 0 && errno == ESRCH
            && supervisor.escapedProcesses(of: spec.name, group: run.pgid).isEmpty
            && supervisor.cgroupMembers(spec.name).isEmpty
        {
            endRun(&core)
            return .groupGone
        }
        if let token = core.groupCheck { watcher.cancel(token) }
        let delay = core.groupCheckDelayUSec
        core.groupCheckDelayUSec = min(delay * 2, 50_000)
        let pid = run.pid
        core.groupCheck = watcher.after(.microseconds(delay)) { [weak self] in
            self?.apply { core in
                guard core.run?.pid == pid else { return [] }
                return self?.checkGroup(&core).map { [$0] } ?? []
            }
        }
        return nil
    }
}
