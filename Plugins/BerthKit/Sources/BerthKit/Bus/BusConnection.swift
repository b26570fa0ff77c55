import CBerthShim
import Glibc
import Synchronization

/// Where to connect.
public enum BusAddress: Sendable, Equatable, CustomStringConvertible {
    case session
    case system
    case address(String)

    public var description: String {
        switch self {
        case .session: "the session bus"
        case .system: "the system bus"
        case .address(let a): "the bus at \(a)"
        }
    }
}

/// One sd-bus connection owned by one dedicated thread. Every sd-bus call runs on that thread: other threads hand
/// it work with `perform` (fire and forget) or `run` (async, with a result); an eventfd wakes its `ppoll` loop.
/// The loop honours `sd_bus_get_events` and `sd_bus_get_timeout`, so sd-bus timers (call timeouts) fire on time.
///
/// When the connection is closed (`close()`) or lost, the loop ends: every `call` still waiting for its reply
/// throws at once, the bus is flushed, closed and unreferenced (`sd_bus_flush_close_unref`) on the bus thread and
/// the eventfd closed. Objects, signal subscriptions and peer trackers hold sd-bus slots that reference the bus;
/// they release them on the bus thread (or, once the loop is over, wherever they are dropped), and the bus memory
/// goes with the last of them.
public final class BusConnection: @unchecked Sendable {
    // `bus` is only touched on the bus thread (or before the thread starts, or after its loop under `endLock`).
    let bus: OpaquePointer
    private let wakeFD: Int32
    /// Work for the bus thread; `ended` once its loop is over (the connection closed or lost).
    private let queue = Mutex<(items: [@Sendable () -> Void], ended: Bool)>(([], false))
    /// Held by the bus thread while it ends the loop, and by `release` work run after that: sd-bus objects are
    /// never touched by two threads at once.
    private let endLock = Mutex<Void>(())
    /// True once the bus thread has given up its reference to the bus (`bus` may be gone).
    let busReleased = Atomic<Bool>(false)
    /// Client calls waiting for their reply (bus thread only); they throw when the loop ends.
    let pendingCalls = Mutex<[ObjectIdentifier: ReplyBox]>([:])
    private let threadID = Mutex<pthread_t?>(nil)
    private let closed = Atomic<Bool>(false)
    private let periodic = Mutex<(intervalUSec: UInt64, next: UInt64, action: (@Sendable () -> Void)?)>((0, 0, nil))
    private let onDisconnect = Mutex<(@Sendable () -> Void)?>(nil)
    /// The address this connection was made to.
    public let address: BusAddress

    /// Connects and starts the bus thread. Throws when the bus cannot be reached.
    public init(_ address: BusAddress, description: String = "berth") throws {
        let bus = try Self.open(address, description: description)
        self.bus = bus
        self.address = address
        self.wakeFD = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        if wakeFD < 0 {
            let e = errno
            sd_bus_flush_close_unref(bus)
            throw BerthError.failed("cannot connect to \(address): eventfd: \(systemErrorText(e))")
        }
        let me = UnsafeSendable(self)
        try OSThread.start(name: "berth-bus") { me.value.loop() }
    }

    /// Opens and starts an sd-bus connection to `address` (as a bus client: Hello is sent) on the calling thread.
    static func open(_ address: BusAddress, description: String) throws -> OpaquePointer {
        var bus: OpaquePointer? = nil
        var r: Int32
        switch address {
        case .session: r = sd_bus_open_user_with_description(&bus, description)
        case .system: r = sd_bus_open_system_with_description(&bus, description)
        case .address(let text):
            r = sd_bus_new(&bus)
            if r >= 0 {
                _ = sd_bus_set_description(bus, description)
                r = text.withCString { sd_bus_set_address(bus, $0) }
                if r >= 0 { r = sd_bus_set_bus_client(bus, 1) }
                if r >= 0 { r = sd_bus_start(bus) }
            }
        }
        guard r >= 0, let bus else {
            if bus != nil { sd_bus_unref(bus) }
            throw BerthError.failed("cannot connect to \(address): \(systemErrorText(-r))")
        }
        return bus
    }

    /// The unique name of this connection (`:1.42`).
    public func uniqueName() async throws -> String {
        try await run {
            var name: UnsafePointer<CChar>? = nil
            let r = sd_bus_get_unique_name(self.bus, &name)
            guard r >= 0, let name else { throw SystemError("sd_bus_get_unique_name", errno: -r) }
            return String(cString: name)
        }
    }

    /// True on the bus thread.
    public var isOnBusThread: Bool {
        guard let id = threadID.withLock({ $0 }) else { return false }
        return pthread_equal(id, pthread_self()) != 0
    }

    /// Runs `work` on the bus thread (inline when already there). Never blocks the caller. Once the connection is
    /// closed or lost there is nothing for the work to do: it is dropped.
    public func perform(_ work: @escaping @Sendable () -> Void) {
        _ = enqueue(work)
    }

    /// Runs `work` on the bus thread and returns its result to the awaiting task; throws at once when the connection
    /// is closed or lost.
    public func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        if isOnBusThread { return try work() }
        return try await withCheckedThrowingContinuation { continuation in
            if !enqueue({ continuation.resume(with: Result { try work() }) }) {
                continuation.resume(throwing: notConnected)
            }
        }
    }

    /// Hands `work` to the bus thread; false (and `work` never runs) when its loop has ended.
    func enqueue(_ work: @escaping @Sendable () -> Void) -> Bool {
        if isOnBusThread {
            work()
            return true
        }
        // The wake-up is written under the lock: once `ended` is set the eventfd may be closed.
        return queue.withLock { q -> Bool in
            guard !q.ended else { return false }
            q.items.append(work)
            wake()
            return true
        }
    }

    /// Runs `work` (releasing sd-bus objects: unreferencing slots, messages, trackers) on the bus thread, or right
    /// here once the loop has ended, so it runs exactly once whatever state the connection is in. The work must
    /// only release what it holds: after the loop `bus` may be gone (see `busReleased`).
    func release(_ work: @escaping @Sendable () -> Void) {
        if enqueue(work) { return }
        endLock.withLock { _ in work() }
    }

    var notConnected: BerthError { .failed("not connected to \(address): the connection is closed") }

    /// Calls `action` on the bus thread every `intervalUSec` (0 disables). Used for the systemd watchdog ping.
    public func setPeriodic(intervalUSec: UInt64, _ action: @escaping @Sendable () -> Void) {
        periodic.withLock { $0 = (intervalUSec, cberth_now_monotonic_usec() + intervalUSec, action) }
        queue.withLock { q in if !q.ended { wake() } }
    }

    /// Called once, on the bus thread, when the connection to the bus is lost.
    public func setDisconnectHandler(_ handler: @escaping @Sendable () -> Void) {
        onDisconnect.withLock { $0 = handler }
    }

    /// Flushes queued messages and stops the loop; the connection is unusable afterwards. Returns at once; calls
    /// still waiting for a reply throw as soon as the loop has ended. Safe to call more than once.
    public func close() {
        perform { self.closed.store(true, ordering: .sequentiallyConsistent) }
    }

    /// True once the loop has ended (closed or lost): nothing more is sent or received.
    public var isClosed: Bool { queue.withLock { $0.ended } }

    /// Call with `queue` locked and not `ended` (the eventfd is open).
    private func wake() {
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    private func loop() {
        threadID.withLock { $0 = pthread_self() }
        while !closed.load(ordering: .sequentiallyConsistent) {
            // Takes the queued work without allocating when there is none (the common case on every message).
            let work = queue.withLock { q -> [@Sendable () -> Void] in
                if q.items.isEmpty { return [] }
                defer { q.items = [] }
                return q.items
            }
            for item in work { item() }
            runPeriodicIfDue()
            if closed.load(ordering: .sequentiallyConsistent) { break }

            let r = sd_bus_process(bus, nil)
            if r < 0 {
                if r != -EINTR {
                    closed.store(true, ordering: .sequentiallyConsistent)
                    onDisconnect.withLock { $0 }?()
                }
                continue
            }
            if r > 0 { continue }
            waitForEvents()
        }
        sd_bus_flush(bus)
        endLock.withLock { _ in
            // What was handed over before the end still runs (on a closed bus sd-bus answers ENOTCONN); nothing is
            // taken after it: `release` work then runs where it is handed over, after this block.
            sd_bus_close(bus)
            let rest = queue.withLock { q -> [@Sendable () -> Void] in
                q.ended = true
                defer { q.items = [] }
                return q.items
            }
            for item in rest { item() }
            // Calls still waiting for a reply end now rather than never.
            let pending = pendingCalls.withLock { p -> [ReplyBox] in
                defer { p.removeAll() }
                return Array(p.values)
            }
            for box in pending { box.finish(.failure(notConnected)) }
            busReleased.store(true, ordering: .sequentiallyConsistent)
            sd_bus_flush_close_unref(bus)
            Glibc.close(wakeFD)
        }
    }

    private func waitForEvents() {
        let events = sd_bus_get_events(bus)
        var deadline: UInt64 = UInt64.max
        _ = sd_bus_get_timeout(bus, &deadline)
        let now = cberth_now_monotonic_usec()
        let periodicNext = periodic.withLock { $0.intervalUSec > 0 ? $0.next : UInt64.max }
        let until = min(deadline, periodicNext)
        let timeout: UInt64 = until == UInt64.max ? UInt64.max : (until > now ? until - now : 0)
        var fds = [
            pollfd(fd: sd_bus_get_fd(bus), events: Int16(max(events, 0)), revents: 0),
            pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0),
        ]
        _ = cberth_ppoll(&fds, 2, timeout)
        if fds[1].revents & Int16(POLLIN) != 0 {
            var value: UInt64 = 0
            _ = read(wakeFD, &value, 8)
        }
    }

    private func runPeriodicIfDue() {
        let now = cberth_now_monotonic_usec()
        let action: (@Sendable () -> Void)? = periodic.withLock { p in
            guard p.intervalUSec > 0, now >= p.next else { return nil }
            p.next = now + p.intervalUSec
            return p.action
        }
        action?()
    }
}

/// Wraps a value the compiler cannot prove Sendable where ownership is handed over explicitly (C pointers owned by
/// the bus thread). Use sparingly, only inside BerthKit's wrapper layer.
struct UnsafeSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
