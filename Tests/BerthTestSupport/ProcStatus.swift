import Foundation

/// A field of `/proc/<pid>/status` in KiB (`VmRSS`: resident memory now, `VmHWM`: its peak), or nil when the
/// process or the field is gone: what the memory tests read of berthd.
public func procStatusKiB(_ pid: Int32, _ field: String) -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") })
    else { return nil }
    return Int(line.split(separator: " ").dropFirst().first ?? "")
}

/// Kills (SIGKILL) every process whose environment holds `entry` (`XDG_RUNTIME_DIR=<a test world's folder>`): what a
/// test world started and that outlived its daemon, such as a service's grandchildren when berthd was killed with
/// SIGKILL (its next start would sweep them; a finished test has no next start). Returns how many were killed.
@discardableResult
public func killProcesses(withEnvironment entry: String) -> Int {
    let wanted = Array(entry.utf8)[...]
    var killed = 0
    for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
        guard let pid = Int32(name), pid != getpid(),
            let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ"),
            [UInt8](data).split(separator: 0).contains(where: { $0.elementsEqual(wanted) })
        else { continue }
        if kill(pid, SIGKILL) == 0 { killed += 1 }
    }
    return killed
}

/// Processes still running (zombies do not count), this one aside, whose command line names `text`: "PID: command
/// line" each.
public func runningProcesses(mentioning text: String) -> [String] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.filter { $0.allSatisfy(\.isNumber) && $0 != String(getpid()) }.compactMap { pid in
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")"), !stat[close...].hasPrefix(") Z"),
            let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline")
        else { return nil }
        let line = String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
        return line.contains(text) ? "\(pid): \(line)" : nil
    }
}
