import Glibc

extension Supervisor {
    /// Kills the process groups recorded in a pids file by a daemon that died without stopping them (kill -9,
    /// power loss of the daemon only, a crash). A group is killed only when it is provably the recorded one: the
    /// file is from this boot, and either its leader (pid == pgid) is alive with the recorded start time, or the
    /// leader is gone and every member started after it (a pgid cannot be reused while any member lives). Each
    /// kill is logged. The file is removed afterwards. Returns the pgids that were killed.
    @discardableResult
    public static func reapLeftovers(stateFile: String, logger: Logger) -> [Int32] {
        guard let text = readSmallFile(stateFile) else { return [] }
        defer { unlink(stateFile) }
        var lines = text.split(separator: "\n")
        guard let header = lines.first, header.hasPrefix("boot ") else { return [] }
        lines.removeFirst()
        if header.dropFirst(5) != ProcStat.bootID {
            logger.debug("pids file \"\(stateFile)\" is from another boot; nothing to reap")
            return []
        }
        let processes = ProcStat.all().filter { !$0.isZombie }
        var killed: [Int32] = []
        for line in lines {
            let fields = line.split(separator: " ", maxSplits: 2)
            guard fields.count >= 2, let pgid = Int32(fields[0]), let start = UInt64(fields[1]), pgid > 1 else {
                continue
            }
            let name = fields.count > 2 ? String(fields[2]) : "?"
            let members = processes.filter { $0.processGroup == pgid }
            guard !members.isEmpty else { continue }
            let leader = members.first { $0.pid == pgid }
            let isOurs = leader.map { $0.startTime == start } ?? members.allSatisfy { $0.startTime >= start }
            guard isOurs else {
                logger.warning("process group \(pgid) recorded for \"\(name)\" now belongs to another program; left alone")
                continue
            }
            if kill(-pgid, SIGKILL) == 0 {
                killed.append(pgid)
                let pids = members.map { String($0.pid) }.joined(separator: " ")
                logger.notice("killed leftover process group \(pgid) of \"\(name)\" from a previous daemon (pids \(pids))")
            }
        }
        return killed
    }

    /// Rewrites the pids file atomically: a temp file, fsync, rename, fsync of the folder. Blocking: runs on a
    /// worker thread, one write at a time (`drainPids`). Whatever sits at the temp name (a FIFO, a link) is removed
    /// first and the temp file is created new, so the write never waits on someone else's file.
    func writePidsFile(_ records: [Int32: GroupRecord]) {
        var text = "boot \(ProcStat.bootID)\n"
        for (pgid, record) in records.sorted(by: { $0.key < $1.key }) {
            text += "\(pgid) \(record.startTime) \(record.name.filter { $0 != "\n" })\n"
        }
        let temp = pidsFile + ".tmp"
        unlink(temp)
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            logger.error("cannot write \"\(temp)\": \(systemErrorText(errno))")
            return
        }
        var bytes = Array(text.utf8)
        let written = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == bytes.count, synced, rename(temp, pidsFile) == 0 else {
            logger.error("cannot write \"\(pidsFile)\": \(systemErrorText(errno))")
            unlink(temp)
            return
        }
        let dir = open(runtimeDirectory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir >= 0 {
            fsync(dir)
            close(dir)
        }
    }
}
