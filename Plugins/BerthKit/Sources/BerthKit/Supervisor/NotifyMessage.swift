/// One sd_notify datagram: newline-separated `KEY=VALUE` assignments (sd_notify(3)). Unknown keys are ignored.
struct NotifyMessage: Equatable, Sendable {
    var ready = false
    var stopping = false
    var status: String?
    var mainPID: Int32?
    /// `X_BERTH_ENDPOINT=`: the endpoint the unit publishes (a Pyro URI, a URL, host:port).
    var endpoint: String?

    init(ready: Bool = false, stopping: Bool = false, status: String? = nil, mainPID: Int32? = nil,
         endpoint: String? = nil) {
        self.ready = ready
        self.stopping = stopping
        self.status = status
        self.mainPID = mainPID
        self.endpoint = endpoint
    }

    init(parsing text: String) {
        for line in text.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals]
            let value = String(line[line.index(after: equals)...])
            switch key {
            case "READY": ready = value == "1"
            case "STOPPING": stopping = value == "1"
            case "STATUS": status = value
            case "MAINPID": mainPID = Int32(value)
            case "X_BERTH_ENDPOINT": endpoint = value
            default: break
            }
        }
    }
}
