import Glibc

/// The fields of /proc/PID/stat the supervisor needs (proc(5)).
struct ProcStat: Equatable {
    var pid: Int32
    /// R, S, D, Z, T, ...
    var state: Character
    var parentPID: Int32
    var processGroup: Int32
    var session: Int32
    /// Field 22: clock ticks after boot when the process started; with the pid it names one process.
    var startTime: UInt64

    var isZombie: Bool { state == "Z" || state == "X" }

    /// Reads /proc/PID/stat; nil when the process does not exist (or is gone by the time it is read).
    static func read(pid: Int32) -> ProcStat? {
        guard let text = readSmallFile("/proc/\(pid)/stat") else { return nil }
        return parse(text)
    }

    /// Parses a stat line. The command name (field 2) may hold spaces and parentheses: fields are counted from
    /// the last ')'.
    static func parse(_ text: String) -> ProcStat? {
        guard let open = text.firstIndex(of: " "), let close = text.lastIndex(of: ")"),
            let pid = Int32(text[..<open])
        else { return nil }
        let rest = text[text.index(after: close)...].split(separator: " ", omittingEmptySubsequences: true)
        guard rest.count > 19, let state = rest[0].first, let parent = Int32(rest[1]), let group = Int32(rest[2]),
            let session = Int32(rest[3]), let start = UInt64(rest[19])
        else { return nil }
        return ProcStat(
            pid: pid, state: state, parentPID: parent, processGroup: group, session: session, startTime: start)
    }

    /// Every process in /proc (a snapshot; processes come and go while it is taken).
    static func all() -> [ProcStat] {
        guard let dir = opendir("/proc") else { return [] }
        defer { closedir(dir) }
        var result: [ProcStat] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            guard let pid = Int32(name), let stat = read(pid: pid) else { continue }
            result.append(stat)
        }
        return result
    }

    /// The pids of this process's children (every thread's /proc/self/task/TID/children).
    static func childrenOfSelf() -> [Int32] {
        guard let dir = opendir("/proc/self/task") else { return [] }
        defer { closedir(dir) }
        var result: [Int32] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            guard Int32(name) != nil, let text = readSmallFile("/proc/self/task/\(name)/children") else { continue }
            result += text.split(separator: " ").compactMap { Int32($0) }
        }
        return result
    }

    /// This boot's id (/proc/sys/kernel/random/boot_id): pids and start times mean nothing across a reboot.
    static var bootID: String {
        (readSmallFile("/proc/sys/kernel/random/boot_id") ?? "").filter { !$0.isWhitespace }
    }
}

/// The whole content of a small file (at most 1 MiB) as UTF-8 text; nil when it cannot be opened.
func readSmallFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while bytes.count < 1 << 20 {
        let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count < 0 && errno == EINTR { continue }
        if count <= 0 { break }
        bytes += chunk[0..<count]
    }
    return String(decoding: bytes, as: UTF8.self)
}
