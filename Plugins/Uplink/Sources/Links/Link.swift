/// One connection to a destination, used by its delivery worker thread only (blocking calls).
protocol Link: AnyObject {
    /// Connects if needed (a broker session, a reusable HTTP handle). Throws `LinkError` with a sentence.
    func open() throws
    /// Sends `rows` in order; returns how many leading rows the destination confirmed, and the error that stopped
    /// the rest.
    func send(_ rows: [Outbox.Row]) -> (confirmed: Int, error: String?)
    /// Whether the link is connected now (MQTT: a session with CONNACK; HTTP: the last request succeeded).
    var isConnected: Bool { get }
    /// Closes cleanly (MQTT: publishes the retained `offline` status first).
    func close()
}

struct LinkError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
