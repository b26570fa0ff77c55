/// One finding of `berthctl doctor`: what was checked, how it went, what was seen and how to fix it.
struct DoctorCheck: Sendable, Equatable {
    enum Status: String, Sendable {
        /// Fine.
        case ok
        /// Works, but probably not what is wanted (linger off): printed with its fix, not a failure.
        case warn
        /// Broken: printed with its fix; doctor exits non-zero.
        case fail
        /// Could not be checked here (no systemd user manager): says why.
        case skip
    }

    var name: String
    var status: Status
    var detail: String
    var fix: String? = nil

    static func ok(_ name: String, _ detail: String) -> DoctorCheck { DoctorCheck(name: name, status: .ok, detail: detail) }
    static func skip(_ name: String, _ detail: String) -> DoctorCheck {
        DoctorCheck(name: name, status: .skip, detail: detail)
    }
    static func warn(_ name: String, _ detail: String, fix: String) -> DoctorCheck {
        DoctorCheck(name: name, status: .warn, detail: detail, fix: fix)
    }
    static func fail(_ name: String, _ detail: String, fix: String) -> DoctorCheck {
        DoctorCheck(name: name, status: .fail, detail: detail, fix: fix)
    }

    /// `ok    user bus        the session bus at ...` and, for warnings and failures, an indented `fix:` line.
    var lines: [String] {
        let label = status == .fail ? "FAIL" : status.rawValue
        let head = label.padding(6) + name.padding(16) + detail
        guard let fix else { return [head] }
        return [head, String(repeating: " ", count: 22) + "fix: " + fix]
    }

    var json: JSON {
        .object([
            ("check", .string(name)), ("status", .string(status.rawValue)), ("detail", .string(detail)),
            ("fix", fix.map(JSON.string) ?? .null),
        ])
    }
}

extension String {
    fileprivate func padding(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}
