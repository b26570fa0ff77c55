import CBerthShim
import Glibc

extension SupervisedProcess {
    /// Spawns the process and sets up its run: the log pipe, the notify socket or TCP probe, the pidfd watch and
    /// the group record. Returns `.spawned` or `.spawnFailed` with the sentence to show.
    func spawn(_ core: inout Core) -> Event {
        var notify: NotifySocket?
        var pipeFDs: [Int32] = [-1, -1]
        do {
            if core.log == nil, let path = spec.logPath {
                core.log = try LogFile(path: path, maxBytes: spec.logMaxBytes, keep: spec.logKeep)
            }
            // The marker every descendant inherits (Supervisor+Marker): found even after it leaves the group.
            var extra: [String: String] = [Supervisor.markerVariable: supervisor.marker(spec.name)]
            if spec.readiness == .notify {
                notify = try NotifySocket(path: supervisor.makeNotifySocketPath())
                extra["NOTIFY_SOCKET"] = notify!.path
            }
            let environment = Spawner.environment(spec, extra: extra)
            let path = try Spawner.resolveExecutable(spec, environment: environment)
            guard cberth_output_pipe(&pipeFDs) == 0 else {
                throw BerthError.failed("\(spec.subject) failed to start: pipe: \(systemErrorText(errno))")
            }
            let cgroupProcs = supervisor.openCgroupProcs(spec.name)
            defer { if cgroupProcs >= 0 { close(cgroupProcs) } }
            let pid = try Spawner.spawn(
                spec, path: path, environment: environment, output: pipeFDs[1], cgroupProcsFD: cgroupProcs)
            close(pipeFDs[1])
            ChildReaper.shared.track(pid)
            supervisor.register(group: pid, name: spec.name)
            core.run = Run(pid: pid, pidfd: -1, logPipe: LogPipe(fd: pipeFDs[0], log: core.log, watcher: watcher))
            watchRun(pid: pid, notify: notify, core: &core)
            supervisor.logger.debug("\(spec.subject) spawned as pid \(pid)")
            return .spawned(pid: pid)
        } catch {
            notify?.close()
            for fd in pipeFDs where fd >= 0 { close(fd) }
            let message = BerthError.wrapping(error).message
            supervisor.logger.error("\(message)")
            return .spawnFailed(message)
        }
    }

    private func watchRun(pid: Int32, notify: NotifySocket?, core: inout Core) {
        let pidfd = cberth_pidfd_open(pid)
        if pidfd >= 0 {
            core.run?.pidfd = pidfd
            core.run?.pidfdToken = try? watcher.watch(fd: pidfd, events: .readable) { [weak self] _ in
                self?.apply { core in self?.reapMain(pid: pid, core: &core).map { [$0] } ?? [] }
            }
        } else {
            supervisor.logger.error("pidfd_open(\(pid)) failed: \(systemErrorText(errno))")
        }
        if let notify {
            core.run?.notify = notify
            core.run?.notifyToken = try? watcher.watch(fd: notify.fd, events: .readable) { [weak self] _ in
                self?.apply { core in self?.receiveNotify(pid: pid, core: &core) ?? [] }
            }
        }
        if case .tcp(let port) = spec.readiness {
            let probe = TCPProbe(port: port, watcher: watcher) { [weak self] in
                self?.apply { core in core.run?.pid == pid ? [.ready] : [] }
            }
            core.run?.probe = probe
            probe.start()
        }
    }

    /// The main process exited (its pidfd became readable): reap it for its status.
    private func reapMain(pid: Int32, core: inout Core) -> Event? {
        guard var run = core.run, run.pid == pid, !run.reaped else { return nil }
        var status: Int32 = 0
        let reaped = cberth_reap(pid, &status)
        if reaped == 0 { return nil }
        if reaped < 0 {
            supervisor.logger.error("waitpid(\(pid)) failed: \(systemErrorText(errno)); its exit status is lost")
            status = 255
        }
        if let token = run.pidfdToken { watcher.unwatch(token, fd: run.pidfd) }
        close(run.pidfd)
        run.pidfd = -1
        run.pidfdToken = nil
        run.reaped = true
        run.probe?.cancel()
        core.run = run
        ChildReaper.shared.untrack(pid)
        supervisor.logger.info("\(spec.subject) (pid \(pid)) \(SupervisorStateMachine.describe(status))")
        return .mainExited(status: status)
    }

    /// sd_notify datagrams: accepted from processes of the run's group only.
    private func receiveNotify(pid: Int32, core: inout Core) -> [Event] {
        guard let run = core.run, run.pid == pid, let notify = run.notify else { return [] }
        var events: [Event] = []
        for datagram in notify.receiveAll() {
            guard isInGroup(datagram, pgid: run.pgid) else {
                supervisor.logger.warning(
                    "\(spec.subject): ignored a notify message from pid \(datagram.senderPID), not in its process group")
                continue
            }
            let message = NotifyMessage(parsing: datagram.text)
            if let status = message.status { core.statusText = status }
            if let endpoint = message.endpoint { core.endpoint = endpoint }
            if message.ready { events.append(.ready) }
            if message.stopping { events.append(.stopping) }
        }
        return events
    }

    /// A sender belongs to the group when its pgid is the group's. One that already exited (a short-lived
    /// `systemd-notify --no-block`) cannot be checked any more; it is accepted when it ran as this daemon's user,
    /// the only user that can reach the socket in the daemon's 0700 runtime folder.
    private func isInGroup(_ datagram: NotifySocket.Datagram, pgid: Int32) -> Bool {
        guard datagram.senderPID > 0 else { return false }
        let group = getpgid(datagram.senderPID)
        if group >= 0 { return group == pgid }
        return errno == ESRCH && datagram.senderUID == getuid()
    }

    /// Releases everything of the finished run. The group is gone (or given up on).
    func endRun(_ core: inout Core) {
        guard let run = core.run else { return }
        core.run = nil
        if let token = core.groupCheck { watcher.cancel(token) }
        core.groupCheck = nil
        if run.pidfd >= 0 {
            if let token = run.pidfdToken { watcher.unwatch(token, fd: run.pidfd) }
            close(run.pidfd)
        }
        if let notify = run.notify {
            if let token = run.notifyToken { watcher.unwatch(token, fd: notify.fd) }
            notify.close()
        }
        run.probe?.cancel()
        run.logPipe?.finish()
        if !run.reaped { ChildReaper.shared.untrack(run.pid) }
        supervisor.unregister(group: run.pgid)
        supervisor.removeCgroup(spec.name)
        core.endpoint = ""
    }
}
