import Foundation

/// A field of `/proc/<pid>/status` in KiB (`VmRSS`: resident memory now, `VmHWM`: its peak), or nil when the
/// process or the field is gone: what the memory tests read of berthd.
public func procStatusKiB(_ pid: Int32, _ field: String) -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") })
    else { return nil }
    return Int(line.split(separator: " ").dropFirst().first ?? "")
}
