import CBerthShim

/// sd_notify to the service manager when `NOTIFY_SOCKET` is set (a no-op otherwise): READY, STATUS, STOPPING and
/// the watchdog, pinged from the bus thread at half of `WATCHDOG_USEC`.
public enum ServiceManagerNotify {
    public static func send(_ state: String) {
        _ = sd_notify(0, state)
    }

    /// The watchdog interval the service manager asked for, if any.
    public static var watchdogUSec: UInt64? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return usec
    }

    public static func startWatchdog(on connection: BusConnection) {
        guard let usec = watchdogUSec else { return }
        connection.setPeriodic(intervalUSec: usec / 2) { send("WATCHDOG=1") }
    }
}
