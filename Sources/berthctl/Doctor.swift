import BerthKit
import Glibc

/// The checks of `berthctl doctor`, in the order a user trips over them: the runtime folder and the user bus
/// (both lost after `su`/`sudo`), linger, the systemd unit, the daemon itself, its plugins.
struct Doctor {
    var options: BusOptions
    let uid = getuid()
    let user: String = getpwuid(getuid()).map { String(cString: $0.pointee.pw_name) } ?? "\(getuid())"

    var system: Bool { options.system }
    /// The runtime folder a login of this user gets from systemd-logind.
    var loginRuntimeDir: String { "/run/user/\(uid)" }
    var exports: String {
        "export XDG_RUNTIME_DIR=\(loginRuntimeDir) DBUS_SESSION_BUS_ADDRESS=unix:path=\(loginRuntimeDir)/bus"
    }
    /// `su`/`sudo` keep the first user's environment or none; logind only sets it up for a real login.
    var switchedUser: Bool { BusTarget.env("SUDO_USER") != nil || loginUID.map { $0 != uid } == true }
    private var loginUID: uid_t? {
        guard let text = try? FileSystem.readKernelText("/proc/self/loginuid"), let value = UInt32(text) else { return nil }
        return value == UInt32.max ? nil : value
    }

    func run() async -> [DoctorCheck] {
        var checks: [DoctorCheck] = []
        if !system {
            checks.append(runtimeFolder())
        }
        let (busCheck, connection) = bus()
        checks.append(busCheck)
        if !system {
            checks.append(linger())
        }
        checks += await unit()
        if let connection {
            defer { connection.close() }
            let daemonCheck = await daemon(connection)
            checks.append(daemonCheck)
            if daemonCheck.status == .ok { checks += await plugins(connection) + uplinkDestinations(connection) }
        }
        return checks
    }

    func runtimeFolder() -> DoctorCheck {
        let name = "runtime folder"
        guard let dir = BusTarget.env("XDG_RUNTIME_DIR") else {
            let why = switchedUser ? " (su and sudo do not set it up for the user they switch to)" : ""
            let missing = FileSystem.isDirectory(loginRuntimeDir)
                ? "" : "; \(loginRuntimeDir) does not exist while \(user) has no session: log in once or enable linger"
            return .fail(name, "XDG_RUNTIME_DIR is not set\(why)",
                fix: "log in as \(user) directly (ssh \(user)@host, or `machinectl shell \(user)@`), or \(exports)\(missing)")
        }
        var info = stat()
        guard stat(dir, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
            return .fail(name, "XDG_RUNTIME_DIR=\(dir) is not a folder",
                fix: "log in again as \(user) so that systemd-logind creates it, or \(exports)")
        }
        guard info.st_uid == uid else {
            return .fail(name, "XDG_RUNTIME_DIR=\(dir) belongs to uid \(info.st_uid), not to \(user) (uid \(uid)): left over from su or sudo",
                fix: exports)
        }
        return .ok(name, "XDG_RUNTIME_DIR=\(dir)")
    }

    func bus() -> (DoctorCheck, BusConnection?) {
        let name = system ? "system bus" : "user bus"
        let target = BusTarget.resolve(options)
        if case .none = target {
            return (.fail(name, "no session bus: DBUS_SESSION_BUS_ADDRESS is not set and there is no $XDG_RUNTIME_DIR/bus",
                fix: "install dbus-user-session and log in again, or \(exports), or run `berthctl up` for a private bus"), nil)
        }
        var place = target.description
        if case .session = target {
            place += " at " + (BusTarget.env("DBUS_SESSION_BUS_ADDRESS") ?? "unix:path=\(BusTarget.env("XDG_RUNTIME_DIR") ?? "")/bus")
        }
        do {
            let connection = try BusConnection(target.busAddress!, description: "berthctl-doctor")
            return (.ok(name, "connected to \(place)"), connection)
        } catch {
            var fix = system ? "is dbus running? systemctl status dbus" : exports
            if !system, let address = BusTarget.env("DBUS_SESSION_BUS_ADDRESS"), switchedUser || !address.contains(loginRuntimeDir) {
                fix = "DBUS_SESSION_BUS_ADDRESS=\(address) is not \(user)'s bus (su and sudo keep the first user's): \(exports)"
            }
            return (.fail(name, "cannot connect to \(place): \(BerthError.wrapping(error).message)", fix: fix), nil)
        }
    }

    func linger() -> DoctorCheck {
        let path = "/var/lib/systemd/linger/\(user)"
        if FileSystem.exists(path) { return .ok("linger", "on for \(user) (\(path)): berthd starts at boot") }
        return .warn("linger", "off for \(user): berthd starts at login and stops at the last logout",
            fix: "sudo loginctl enable-linger \(user)   (to start at boot without a login: headless machines)")
    }

    func unit() async -> [DoctorCheck] {
        let scope = system ? ["systemctl", "--system"] : ["systemctl", "--user"]
        let label = system ? "system unit" : "user unit"
        let command = scope.joined(separator: " ")
        guard let enabled = await ProgramOutput.run(scope + ["--no-pager", "is-enabled", "berthd.service"]) else {
            return [.skip(label, "systemctl is not installed: cannot check berthd.service")]
        }
        let states = ["enabled", "enabled-runtime", "linked", "linked-runtime", "alias", "masked", "masked-runtime",
            "static", "indirect", "disabled", "generated", "transient", "bad", "not-found"]
        guard states.contains(enabled.text) || enabled.text.contains("No such file") else {
            return [.skip(label, "\(command) cannot reach a systemd manager (\(enabled.text)): cannot check berthd.service")]
        }
        var checks: [DoctorCheck] = []
        switch enabled.text {
        case "enabled", "enabled-runtime", "linked", "linked-runtime", "alias", "static", "indirect", "generated":
            checks.append(.ok(label, "berthd.service is \(enabled.text)"))
        case "masked", "masked-runtime":
            checks.append(.fail(label, "berthd.service is masked", fix: "\(command) unmask berthd && \(command) enable --now berthd"))
        default:
            if enabled.text.contains("No such file") || enabled.text == "not-found" {
                return [.fail(label, "berthd.service is not installed", fix: "apt install ./berth_*.deb (the berth package ships it)")]
            }
            checks.append(.fail(label, "berthd.service is \(enabled.text)", fix: "\(command) enable --now berthd"))
        }
        // is-enabled reads unit files; is-active needs the manager itself.
        let active = await ProgramOutput.run(scope + ["--no-pager", "is-active", "berthd.service"])?.text ?? ""
        let journal = system ? "journalctl -u berthd" : "journalctl --user -u berthd"
        switch active {
        case "active", "reloading": checks.append(.ok(label, "berthd.service is \(active)"))
        case "activating": checks.append(.warn(label, "berthd.service is still starting", fix: "wait, then check \(journal)"))
        case "inactive", "failed", "deactivating":
            checks.append(.fail(label, "berthd.service is \(active)", fix: "\(command) start berthd; if it fails, see \(journal)"))
        default:
            checks.append(.skip(label, "\(command) cannot reach a systemd manager (\(active)): cannot check whether berthd.service is active"))
        }
        return checks
    }
}
