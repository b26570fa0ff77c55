import Glibc

extension SupervisorStateMachine {
    mutating func onStart(manual: Bool, now: Now) -> [Action] {
        switch state {
        case .inactive, .failed:
            if manual { resetLimits() }
            return beginStart(now: now)
        case .activating where subState == .autoRestart:
            if manual { resetLimits() }
            return [.cancelTimer] + beginStart(now: now)
        case .activating:
            return []
        case .active:
            return [.finishStart(nil)]
        case .deactivating:
            startQueued = true
            return []
        }
    }

    mutating func onStop() -> [Action] {
        let hadQueuedStart = startQueued
        startQueued = false
        switch state {
        case .inactive, .failed:
            return [.finishStop]
        case .activating where subState == .autoRestart:
            enter(.inactive, .dead)
            return [.cancelTimer, .finishStop]
        case .activating, .active:
            if state == .activating {
                pendingStartError = BerthError(.cancelled, "\(config.subject) was stopped before it became ready")
            }
            stopIntent = .requested
            enter(.deactivating, .stopSigterm)
            return [.signalGroup(SIGTERM), .armTimer(.stopTimeout, afterUSec: config.stopTimeoutUSec)]
        case .deactivating:
            if stopIntent == nil { stopIntent = .requested }
            // A start queued behind this stop will not happen: its waiters get the reason now (they would wait
            // for ever otherwise).
            var actions: [Action] = []
            if hadQueuedStart {
                actions.append(.finishStart(BerthError(.cancelled, "\(config.subject) was stopped before it started")))
            }
            if subState == .stopping {
                subState = .stopSigterm
                actions += [.signalGroup(SIGTERM), .armTimer(.stopTimeout, afterUSec: config.stopTimeoutUSec)]
            }
            return actions
        }
    }

    mutating func onSpawned(pid: Int32, now: Now) -> [Action] {
        guard state == .activating, subState == .start, mainPID == 0 else { return [] }
        mainPID = pid
        if config.readyAtSpawn { return becomeActive(now: now) }
        if config.startTimeoutUSec == 0 { return [] }
        return [.armTimer(.startTimeout, afterUSec: config.startTimeoutUSec)]
    }

    mutating func onSpawnFailed(_ message: String) -> [Action] {
        guard state == .activating else { return [] }
        enter(.failed, .failed)
        result = .spawnFailed
        lastError = message
        return [.finishStart(.failed(message))]
    }

    mutating func onReady(now: Now) -> [Action] {
        guard state == .activating, subState == .start, mainPID != 0 else { return [] }
        return [.cancelTimer] + becomeActive(now: now)
    }

    mutating func onStopping() -> [Action] {
        if state == .active { enter(.deactivating, .stopping) }
        return []
    }

    mutating func onMainExited(status: Int32) -> [Action] {
        guard mainPID != 0 else { return [] }
        mainPID = 0
        exitStatus = status
        if state == .deactivating && stopIntent != nil { return [.awaitGroupGone] }
        if state == .activating {
            pendingStartError = .failed("\(config.subject) exited before it became ready (\(Self.describe(status)))")
        }
        result = status == 0 ? .success : status < 0 ? .signal : .exitCode
        // The main process is gone; what is left of its group gets SIGTERM, then SIGKILL after stopTimeout.
        enter(.deactivating, .stopSigterm)
        return [
            .signalGroup(SIGTERM), .armTimer(.stopTimeout, afterUSec: config.stopTimeoutUSec), .awaitGroupGone,
        ]
    }

    mutating func onGroupGone(now: Now) -> [Action] {
        guard state == .deactivating, mainPID == 0 else { return [] }
        var actions: [Action] = [.cancelTimer]
        let intent = stopIntent
        let startError = pendingStartError
        stopIntent = nil
        pendingStartError = nil
        activeSinceUSec = 0
        if let startError {
            lastError = startError.message
            actions.append(.finishStart(startError))
        }
        switch intent {
        case .requested:
            enter(.inactive, .dead)
            actions.append(.finishStop)
        case .startTimeout:
            enter(.failed, .failed)
            result = .timeout
            let seconds = Double(config.startTimeoutUSec) / 1e6
            let error = BerthError(.timeout, "\(config.subject) did not become ready within \(seconds) s and was stopped")
            lastError = error.message
            actions += [.finishStart(error), .finishStop]
        case nil:
            actions += afterExit(now: now)
        }
        if startQueued {
            startQueued = false
            resetLimits()
            actions += (state == .activating ? [.cancelTimer] : []) + beginStart(now: now)
        }
        return actions
    }

    mutating func onTimer(_ timer: Timer, now: Now) -> [Action] {
        switch timer {
        case .startTimeout:
            guard state == .activating, subState == .start else { return [] }
            stopIntent = .startTimeout
            enter(.deactivating, .stopSigterm)
            return [.signalGroup(SIGTERM), .armTimer(.stopTimeout, afterUSec: config.stopTimeoutUSec)]
        case .stopTimeout:
            guard state == .deactivating else { return [] }
            if subState == .stopSigkill {
                // Even SIGKILL did not empty the group (a process stuck in the kernel): give up waiting.
                lastError = "\(config.subject): processes of its group survived SIGKILL"
                mainPID = 0
                return onGroupGone(now: now)
            }
            subState = .stopSigkill
            return [.signalGroup(SIGKILL), .armTimer(.stopTimeout, afterUSec: config.stopTimeoutUSec)]
        case .restartDelay:
            guard state == .activating, subState == .autoRestart else { return [] }
            let actions = beginStart(now: now)
            if actions == [.spawn] { restarts += 1 }
            return actions
        }
    }

    /// The decision after the main process exited on its own and its group is gone.
    private mutating func afterExit(now: Now) -> [Action] {
        let failure = result != .success || !everReady
        let restart = config.restart == .always || (config.restart == .onFailure && failure)
        if restart {
            // A run that stayed up for a whole start-limit interval was healthy: the backoff starts over.
            if everReady && now.monotonic &- runStartedMonotonic >= config.startLimitIntervalUSec { backoffStep = 0 }
            if let limitError = startLimitError(now: now) { return [.finishStart(limitError)] }
            enter(.activating, .autoRestart)
            let delay = nextRestartDelayUSec
            backoffStep += 1
            return [.armTimer(.restartDelay, afterUSec: delay)]
        }
        if failure {
            enter(.failed, .failed)
            if lastError.isEmpty { lastError = "\(config.subject) \(Self.describe(exitStatus))" }
        } else {
            enter(.inactive, .dead)
        }
        return []
    }

    private mutating func beginStart(now: Now) -> [Action] {
        if let limitError = startLimitError(now: now) { return [.finishStart(limitError)] }
        startTimes.append(now.monotonic)
        enter(.activating, .start)
        mainPID = 0
        everReady = false
        stopIntent = nil
        pendingStartError = nil
        runStartedMonotonic = now.monotonic
        lastError = ""
        return [.spawn]
    }

    /// Enters `failed` and returns the error when another start would exceed the start limit.
    private mutating func startLimitError(now: Now) -> BerthError? {
        startTimes.removeAll { now.monotonic &- $0 >= config.startLimitIntervalUSec }
        guard startTimes.count >= config.startLimitBurst else { return nil }
        enter(.failed, .failed)
        result = .startLimitHit
        let seconds = Double(config.startLimitIntervalUSec) / 1e6
        let error = BerthError.failed(
            "\(config.subject) was started \(startTimes.count) times within \(seconds) s (the start limit) "
                + "and stays failed until it is started by hand")
        lastError = error.message
        return error
    }

    private mutating func becomeActive(now: Now) -> [Action] {
        enter(.active, .running)
        activeSinceUSec = now.wall
        everReady = true
        result = .success
        return [.finishStart(nil)]
    }

    private mutating func resetLimits() {
        startTimes = []
        backoffStep = 0
    }

    private mutating func enter(_ newState: UnitState, _ newSubState: UnitSubState) {
        state = newState
        subState = newSubState
        if newState != .active && newState != .deactivating { activeSinceUSec = 0 }
    }

    /// "exited with status 3" / "was killed by signal 9".
    static func describe(_ status: Int32) -> String {
        status < 0 ? "was killed by signal \(-status)" : "exited with status \(status)"
    }
}
