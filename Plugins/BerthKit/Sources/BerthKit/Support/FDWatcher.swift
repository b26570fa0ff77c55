import CBerthShim
import Glibc
import Synchronization

/// One epoll thread for the whole process: level-triggered fd callbacks, work queued onto that thread, and
/// cancellable timers (one timerfd armed at the earliest deadline). Handlers run on the epoll thread and must be
/// quick: no blocking waits, no long computations. The thread is a plain pthread that never exits, so children
/// spawned from it can rely on `PR_SET_PDEATHSIG` (which follows the spawning thread, not the process).
public final class FDWatcher: Sendable {
    /// Identifies one watch (`watch`) or one timer (`after`).
    public struct Token: Hashable, Sendable {
        let id: UInt64
    }

    /// epoll event bits.
    public struct Events: OptionSet, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let readable = Events(rawValue: UInt32(EPOLLIN.rawValue))
        public static let writable = Events(rawValue: UInt32(EPOLLOUT.rawValue))
        public static let error = Events(rawValue: UInt32(EPOLLERR.rawValue))
        public static let hangup = Events(rawValue: UInt32(EPOLLHUP.rawValue))
    }

    public typealias Handler = @Sendable (Events) -> Void

    /// The process-wide watcher, started on first use.
    public static let shared = FDWatcher()

    struct State {
        var handlers: [UInt64: Handler] = [:]
        var nextID: UInt64 = 16
        var queue: [@Sendable () -> Void] = []
        var timers = TimerQueue()
        var armedDeadline: UInt64 = 0
        var thread: pthread_t? = nil
    }

    static let wakeToken: UInt64 = 1
    static let timerToken: UInt64 = 2

    let epollFD: Int32
    let wakeFD: Int32
    let timerFD: Int32
    let state = Mutex(State())

    /// A watcher with its own thread (tests); most code uses `shared`.
    public init() {
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        wakeFD = cberth_eventfd_create()
        timerFD = cberth_timerfd_create()
        precondition(epollFD >= 0 && wakeFD >= 0 && timerFD >= 0, "FDWatcher: \(systemErrorText(errno))")
        let readable = UInt32(EPOLLIN.rawValue)
        precondition(cberth_epoll_ctl(epollFD, EPOLL_CTL_ADD, wakeFD, readable, Self.wakeToken) == 0)
        precondition(cberth_epoll_ctl(epollFD, EPOLL_CTL_ADD, timerFD, readable, Self.timerToken) == 0)
        startThread()
    }

    /// Calls `handler` on the epoll thread whenever `fd` has any of `events` (level-triggered; errors and hangups
    /// are always reported). One watch per fd (epoll refuses a second: EEXIST). The fd stays owned by the caller:
    /// `unwatch` before closing it, or a new fd with the same number could lose its watch.
    public func watch(fd: Int32, events: Events = .readable, handler: @escaping Handler) throws -> Token {
        let id = state.withLock { state in
            let id = state.nextID
            state.nextID += 1
            state.handlers[id] = handler
            return id
        }
        if cberth_epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, events.rawValue, id) != 0 {
            let code = errno
            _ = state.withLock { $0.handlers.removeValue(forKey: id) }
            throw SystemError("epoll_ctl(ADD, \(fd))", errno: code)
        }
        return Token(id: id)
    }

    /// Changes the events a watch waits for (e.g. to stop asking for `.writable`).
    public func modify(_ token: Token, fd: Int32, events: Events) {
        _ = cberth_epoll_ctl(epollFD, EPOLL_CTL_MOD, fd, events.rawValue, token.id)
    }

    /// Stops a watch. After it returns, the handler is not called again (unless it is running right now on the
    /// epoll thread, and then only until that call returns).
    public func unwatch(_ token: Token, fd: Int32) {
        _ = state.withLock { $0.handlers.removeValue(forKey: token.id) }
        _ = cberth_epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, 0, 0)
    }

    /// Runs `work` on the epoll thread, in the order submitted.
    public func perform(_ work: @escaping @Sendable () -> Void) {
        state.withLock { $0.queue.append(work) }
        wake()
    }

    /// True on the epoll thread.
    public var isCurrentThread: Bool {
        guard let thread = state.withLock({ $0.thread }) else { return false }
        return pthread_equal(thread, pthread_self()) != 0
    }

    /// Calls `handler` on the epoll thread once `delay` has passed (a delay of zero or less: at the next turn).
    @discardableResult
    public func after(_ delay: Duration, _ handler: @escaping @Sendable () -> Void) -> Token {
        let deadline = cberth_now_monotonic_usec() &+ delay.microsecondsClamped
        return state.withLock { state in
            let id = state.nextID
            state.nextID += 1
            state.timers.insert(id: id, deadline: deadline, handler: handler)
            armTimer(&state)
            return Token(id: id)
        }
    }

    /// Cancels a timer from `after`; harmless when it already fired.
    public func cancel(_ token: Token) {
        state.withLock { $0.timers.remove(id: token.id) }
    }

    func wake() {
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    /// Arms the timerfd when the earliest deadline moved earlier than what is armed. Called with the lock held.
    func armTimer(_ state: inout State) {
        guard let earliest = state.timers.earliestDeadline else { return }
        if state.armedDeadline == 0 || earliest < state.armedDeadline {
            state.armedDeadline = earliest
            _ = cberth_timerfd_arm_absolute(timerFD, max(earliest, 1))
        }
    }
}
