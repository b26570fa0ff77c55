import Glibc
import Synchronization

/// A FIFO between two threads: `push` never blocks, `pop` blocks the calling (dedicated) thread until an element
/// arrives. A counting semaphore tracks how many are waiting.
final class BlockingQueue<Element: Sendable>: Sendable {
    private let items = Mutex<(buffer: [Element], head: Int)>(([], 0))
    nonisolated(unsafe) private let semaphore: UnsafeMutablePointer<sem_t>

    init() {
        semaphore = .allocate(capacity: 1)
        sem_init(semaphore, 0, 0)
    }

    deinit {
        sem_destroy(semaphore)
        semaphore.deallocate()
    }

    func push(_ element: Element) {
        items.withLock { $0.buffer.append(element) }
        sem_post(semaphore)
    }

    /// Waits for and removes the oldest element. Blocks: dedicated threads only.
    func pop() -> Element {
        while sem_wait(semaphore) != 0 {}  // EINTR
        return items.withLock { state in
            let element = state.buffer[state.head]
            state.head += 1
            // Compact now and then so the array does not grow without bound.
            if state.head >= 64 && state.head * 2 >= state.buffer.count {
                state.buffer.removeFirst(state.head)
                state.head = 0
            }
            return element
        }
    }

    var count: Int { items.withLock { $0.buffer.count - $0.head } }
}
