import CBerthShim
import Glibc

/// The delegated-cgroup path: under systemd with `Delegate=yes` (both units in packaging/systemd), berthd owns
/// its unit's cgroup (cgroup v2). Each supervised unit then runs in a child cgroup of its own,
/// `<berthd's cgroup>/<plugin>.<unit>`, which the child joins between fork and exec, so every descendant is born
/// in it whatever it does (setsid, a cleared environment, double forks). Stopping signals every member, SIGKILL
/// through `cgroup.kill` where the kernel has it (5.14); the run is over when the cgroup is empty, and the empty
/// cgroup is removed. After a crash of berthd, systemd (KillMode=mixed) kills what is left in the unit's cgroup;
/// whatever survived in a child cgroup is killed by the next start (`reapCgroups`). The marker and the process
/// group stay in use beside it.
///
/// Delegation is detected, never assumed: the unified hierarchy's mount (cgroup2 in /proc/self/mountinfo),
/// berthd's cgroup in it (`0::PATH` of /proc/self/cgroup, not the root), systemd's mark of a delegated cgroup
/// (the `trusted.delegate` or `user.delegate` xattr set to 1, systemd 251 and later, or
/// `BERTH_CGROUP_DELEGATED=1`, which both units set beside `Delegate=yes`) and write access. The environment
/// variable `BERTH_CGROUP` names a cgroup folder to use as delegated instead (tests, and managers other than
/// systemd that delegate).
public enum CgroupTree {
    /// berthd's delegated cgroup folder, or nil.
    public static func delegatedRoot() -> String? {
        if let given = getenv("BERTH_CGROUP").map({ String(cString: $0) }), !given.isEmpty {
            return usable(given) ? given : nil
        }
        // The units say it too (`Environment=BERTH_CGROUP_DELEGATED=1` beside `Delegate=yes`): older systemd, and
        // hybrid hierarchies, may not mark the cgroup.
        let declared = getenv("BERTH_CGROUP_DELEGATED").map { String(cString: $0) } == "1"
        guard let mount = unifiedMount(), let text = readSmallFile("/proc/self/cgroup") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("0::") {
            let relative = String(line.dropFirst(3))
            guard relative != "/", !relative.isEmpty else { return nil }
            let folder = mount + relative
            guard isDelegated(folder) || declared, usable(folder) else { return nil }
            return folder
        }
        return nil
    }

    /// The mount point of the cgroup2 (unified) hierarchy.
    static func unifiedMount() -> String? {
        guard let text = readSmallFile("/proc/self/mountinfo") else { return nil }
        for line in text.split(separator: "\n") {
            // ... mount-point ... - fstype source options
            guard let separator = line.firstRange(of: " - "), line[separator.upperBound...].hasPrefix("cgroup2 ")
            else { continue }
            let fields = line[..<separator.lowerBound].split(separator: " ")
            if fields.count > 4 { return String(fields[4]) }
        }
        return nil
    }

    static func isDelegated(_ folder: String) -> Bool {
        for name in ["trusted.delegate", "user.delegate"] {
            var value = [CChar](repeating: 0, count: 8)
            let count = getxattr(folder, name, &value, value.count)
            if count == 1 && value[0] == 0x31 { return true }
        }
        return false
    }

    static func usable(_ folder: String) -> Bool {
        access(folder, W_OK) == 0 && access(folder + "/cgroup.procs", W_OK) == 0
    }

    /// The pids in a cgroup (its `cgroup.procs`); empty when it is gone.
    static func members(_ folder: String) -> [Int32] {
        (readSmallFile(folder + "/cgroup.procs") ?? "").split(separator: "\n").compactMap { Int32($0) }
    }

    /// Signals every member; SIGKILL through `cgroup.kill` when the kernel has it (no member can fork away).
    static func signal(_ folder: String, _ signal: Int32) {
        if signal == SIGKILL, write(folder + "/cgroup.kill", "1") { return }
        for pid in members(folder) { kill(pid, signal) }
    }

    /// Writes `text` to a cgroup file; true when it was written whole.
    @discardableResult
    static func write(_ path: String, _ text: String) -> Bool {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        return Glibc.write(fd, bytes, bytes.count) == bytes.count
    }
}

extension Supervisor {
    /// The child cgroups of this supervisor's units start with this (its runtime folder's name: the plugin id).
    var cgroupPrefix: String { FileSystem.baseName(runtimeDirectory) + "." }

    /// The cgroup folder of unit `name` (nil without delegation).
    func cgroupFolder(_ name: String) -> String? { cgroupRoot.map { $0 + "/" + cgroupPrefix + name } }

    /// Creates the unit's cgroup (if needed) and opens its `cgroup.procs` for the child to join; -1 without
    /// delegation. A failure is logged and the unit runs without a cgroup of its own.
    func openCgroupProcs(_ name: String) -> Int32 {
        guard let folder = cgroupFolder(name) else { return -1 }
        if mkdir(folder, 0o755) != 0 && errno != EEXIST {
            logger.error("cannot create the cgroup \"\(folder)\": \(systemErrorText(errno))")
            return -1
        }
        let fd = open(folder + "/cgroup.procs", O_WRONLY | O_CLOEXEC)
        if fd < 0 { logger.error("cannot open \"\(folder)/cgroup.procs\": \(systemErrorText(errno))") }
        return fd
    }

    /// The members of unit `name`'s cgroup (empty without delegation).
    func cgroupMembers(_ name: String) -> [Int32] {
        cgroupFolder(name).map(CgroupTree.members) ?? []
    }

    /// Signals the members of unit `name`'s cgroup.
    func signalCgroup(_ name: String, _ signal: Int32) {
        if let folder = cgroupFolder(name) { CgroupTree.signal(folder, signal) }
    }

    /// Removes unit `name`'s cgroup once it is empty (a no-op otherwise).
    func removeCgroup(_ name: String) {
        if let folder = cgroupFolder(name) { rmdir(folder) }
    }

    /// The cgroups of this supervisor's units that a previous daemon left: their members are killed and the
    /// cgroups removed. Returns the pids killed.
    func reapCgroups() -> [Int32] {
        guard let root = cgroupRoot else { return [] }
        var killed: [Int32] = []
        for entry in FileSystem.list(root) where entry.hasPrefix(cgroupPrefix) {
            let folder = root + "/" + entry
            guard FileSystem.isDirectory(folder) else { continue }
            let members = CgroupTree.members(folder)
            if !members.isEmpty {
                CgroupTree.signal(folder, SIGKILL)
                killed += members
                logger.notice(
                    "killed leftover processes \(members.map(String.init).joined(separator: " ")) in cgroup \"\(folder)\" from a previous daemon")
                for _ in 0..<200 where !CgroupTree.members(folder).isEmpty { usleep(5000) }
            }
            rmdir(folder)
        }
        return killed
    }
}
