import BerthKit

extension Doctor {
    var startFix: String {
        system ? "sudo systemctl enable --now berthd; if it fails, see journalctl -u berthd"
            : "systemctl --user enable --now berthd (without systemd: berthctl up); if it fails, see journalctl --user -u berthd"
    }
    var reloadFix: String { system ? "sudo systemctl reload berthd" : "systemctl --user reload berthd" }

    /// Does berthd answer Ping on the bus?
    func daemon(_ connection: BusConnection) async -> DoctorCheck {
        let target = BusTarget.resolve(options).description
        do {
            guard let pid = try await DaemonProbe.ping(connection, timeout: .seconds(5)) else {
                return .fail("daemon", "berthd does not answer on \(target)", fix: startFix)
            }
            let version = try await connection.berthProperty(Berth.root, Berth.manager, "Version").string ?? "?"
            return .ok("daemon", "berthd \(version) (pid \(pid)) answers on \(target)")
        } catch let error as DBusError where error.name == "org.freedesktop.DBus.Error.AccessDenied" {
            return .fail("daemon", "the bus does not let \(user) talk to berthd: \(error.message)",
                fix: "the system policy lets everyone read; ask an administrator if this persists")
        } catch {
            return .fail("daemon", "berthd on \(target) fails: \(BerthError.wrapping(error).message)", fix: startFix)
        }
    }

    /// Is every plugin berthd found active (or deliberately disabled)?
    func plugins(_ connection: BusConnection) async -> [DoctorCheck] {
        let rows: [[String]]
        do {
            rows = try await PluginsCommand.fetch(connection)
        } catch {
            return [.fail("plugins", "cannot list the plugins: \(BerthError.wrapping(error).message)", fix: startFix)]
        }
        guard !rows.isEmpty else {
            return [.warn("plugins", "berthd loaded no plugins",
                fix: "plugins are *.so files in /usr/lib/berth/plugins, or in the plugin_dirs of berth.yaml")]
        }
        return rows.map { row in
            let (id, state, message) = (row[0], row[2], row[4])
            let name = "plugin \(id)"
            switch state {
            case "active": return .ok(name, "active")
            case "disabled": return .ok(name, "disabled in the configuration (disabled_plugins)")
            default:
                return .fail(name, "\(state): \(message.isEmpty ? "no reason given" : message)",
                    fix: "correct the cause above, check with `berthd --check-config`, then \(reloadFix)")
            }
        }
    }
}
