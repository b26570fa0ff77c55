import BerthKit
import Glibc

/// When berthd does not answer, asks systemd why: `berthd.service`'s state from `org.freedesktop.systemd1` on the
/// same bus (the user's manager on the session bus, the system's on the system bus) and the unit's last error lines
/// from the journal. Quick by construction (each call 1 s at most): a client is told within seconds, not after the
/// bus's 25 s timeout.
enum SystemdProbe {
    static let unit = "berthd.service"

    /// A sentence about the unit, or nil when systemd is not on that bus or does not know the unit.
    static func explain(_ target: BusTarget) async -> String? {
        guard let address = target.busAddress, let connection = try? BusConnection(address, description: "berthctl")
        else { return nil }
        defer { connection.close() }
        let systemd = "org.freedesktop.systemd1"
        guard
            let reply = try? await connection.call(
                systemd, "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager", "LoadUnit",
                [.string(unit)], timeout: .seconds(1)),
            let path = reply.first?.string
        else { return nil }
        func property(_ interface: String, _ name: String) async -> DBusValue? {
            try? await connection.getProperty(systemd, path, "org.freedesktop.systemd1." + interface, name,
                timeout: .seconds(1))
        }
        guard let load = await property("Unit", "LoadState")?.string, load == "loaded" else { return nil }
        let active = await property("Unit", "ActiveState")?.string ?? "?"
        let sub = await property("Unit", "SubState")?.string ?? "?"
        var text = "systemd says \(unit) is \(active) (\(sub))"
        if let result = await property("Service", "Result")?.string, result != "success" {
            let status = await property("Service", "ExecMainStatus")?.int64 ?? 0
            text += ", result \(result)" + (status != 0 ? ", exit status \(status)" : "")
        }
        let user = !target.isSystem
        // The errors of the unit's last start, not of an earlier life.
        let started = await property("Unit", "InactiveExitTimestamp")?.uint64 ?? 0
        let lines = Journal.lastMessages(unit: unit, user: user, priority: 3, count: 3, sinceUSec: started)
        if !lines.isEmpty {
            text += "; its last errors: " + lines.map { "\"\($0)\"" }.joined(separator: ", ")
        }
        text += " (see `journalctl\(user ? " --user" : "") -u berthd`)"
        return text
    }

    /// Whether an error from a call to berthd means it did not answer (not running, failing to start, hung).
    static func meansNoAnswer(_ error: DBusError) -> Bool {
        error.name.hasPrefix("org.freedesktop.DBus.Error.Spawn.")
            || error.name.hasPrefix("org.freedesktop.systemd1.")
            || [
                "org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner",
                "org.freedesktop.DBus.Error.NoReply", "org.freedesktop.DBus.Error.Timeout",
            ].contains(error.name)
    }
}
