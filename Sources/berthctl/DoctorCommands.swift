import ArgumentParser
import BerthKit

/// berthctl doctor: checks what keeps berthd from running for this user and prints the fix for each problem.
struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor", abstract: "Check the setup (bus, linger, unit, daemon, plugins) and print fixes.",
        discussion: """
            Session mode checks XDG_RUNTIME_DIR and the user bus (both lost after su or sudo), linger \
            (/var/lib/systemd/linger/USER), the user unit (systemctl --user is-enabled/is-active, when a systemd \
            user manager is reachable), whether berthd answers and whether its plugins are active. With --system: \
            the system bus, the system unit, the daemon and its plugins. Exits 1 when a check fails; a warning \
            (linger off) does not fail.
            """)
    @OptionGroup var bus: BusOptions

    func run() async throws {
        try await CLI.run(bus) {
            let doctor = Doctor(options: bus)
            let checks = await doctor.run()
            let failed = checks.filter { $0.status == .fail }.count
            if bus.json {
                print(JSON.array(checks.map(\.json)).text)
            } else {
                print("berthctl doctor: \(bus.system ? "system" : "session") mode, user \(doctor.user) (uid \(doctor.uid))")
                for check in checks { for line in check.lines { print(line) } }
                let warnings = checks.filter { $0.status == .warn }.count
                let note = warnings == 0 ? "" : " (\(warnings) warning\(warnings == 1 ? "" : "s"))"
                print(failed == 0 ? "all checks passed\(note)" : "\(failed) check\(failed == 1 ? "" : "s") failed\(note)")
            }
            if failed > 0 { throw ExitCode(1) }
        }
    }
}
