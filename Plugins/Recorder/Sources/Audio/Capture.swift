import BerthKit
import Synchronization

/// Audio as the capture thread hands it on: whole frames in the capture format.
struct AudioChunk: Sendable {
    var bytes: [UInt8]
    /// Index of the first frame in the session's stream (lost frames are not counted).
    var firstFrame: Int64
    var frames: Int
    /// Wall-clock estimate of when the first frame was sampled.
    var captureUSec: Int64
    /// Samples were lost just before this chunk (an overrun): its time does not follow from the previous one.
    var afterGap: Bool
}

/// What flows from the capture thread to the writer thread, in order.
enum CaptureItem: Sendable {
    case opened(periodFrames: Int)
    case chunk(AudioChunk)
    /// Samples were lost: by the device (`writerBehind == false`) or because the writer fell too far behind.
    case overrun(atFrame: Int64, writerBehind: Bool)
    /// The frame limit was reached or a stop was requested.
    case ended(frames: Int64)
    /// The device could not be opened or failed while reading.
    case failed(BerthError, frames: Int64)
}

/// The capture side of one recording session: a dedicated thread that opens the PCM, reads period by period up
/// to a frame limit (or until `stop()`), recovers overruns, and queues chunks for the writer. It never writes
/// files, so slow storage cannot stall the device; if the writer falls more than `maxQueuedBytes` behind,
/// chunks are dropped and reported as overruns.
final class Capture: Sendable {
    let settings: CaptureSettings
    let frameLimit: Int64?
    let pace: Bool
    let maxQueuedBytes: Int
    private let queue: BlockingQueue<CaptureItem>
    private let stopRequested = Atomic<Bool>(false)
    private let queuedBytes = Atomic<Int>(0)
    /// Frames read and overruns so far (for status).
    let framesCaptured = Atomic<Int64>(0)
    let overruns = Atomic<Int>(0)
    /// CPU time the capture thread used, set when it ends.
    let cpuUSec = Atomic<Int64>(0)

    init(settings: CaptureSettings, frameLimit: Int64?, pace: Bool, queue: BlockingQueue<CaptureItem>) {
        self.settings = settings
        self.frameLimit = frameLimit
        self.pace = pace
        self.queue = queue
        // Ten seconds of audio, at least 16 MiB.
        maxQueuedBytes = max(16 << 20, settings.format.sampleRate * settings.format.captureFrameBytes * 10)
    }

    func start() {
        do {
            try OSThread.start(name: "berth-capture") { self.run() }
        } catch {
            // No thread: the writer still gets its last item and ends the session with the reason.
            queue.push(.failed(.wrapping(error), frames: 0))
        }
    }

    /// Asks the thread to end after the current read (at most about one period).
    func stop() { stopRequested.store(true, ordering: .relaxed) }

    var isStopRequested: Bool { stopRequested.load(ordering: .relaxed) }

    /// The writer reports bytes it has taken off the queue.
    func consumed(bytes: Int) { queuedBytes.subtract(bytes, ordering: .relaxed) }

    private func run() {
        AlsaDiagnostics.install()
        defer { AlsaDiagnostics.uninstall() }
        let item = readLoop()
        cpuUSec.store(Int64(SystemClock.threadCPUUSec()), ordering: .relaxed)
        queue.push(item)
    }

    /// Reads until done; returns the last item (`.ended` or `.failed`) for `run` to queue.
    private func readLoop() -> CaptureItem {
        if isStopRequested { return .ended(frames: 0) }
        let pcm: AlsaPCM
        do {
            pcm = try AlsaPCM(settings)
        } catch {
            return .failed(.wrapping(error), frames: 0)
        }
        queue.push(.opened(periodFrames: pcm.periodFrames))
        let format = settings.format
        let frameBytes = format.captureFrameBytes
        let startMonotonic = Int64(SystemClock.monotonicUSec())
        var captured: Int64 = 0
        var afterGap = false
        while !isStopRequested {
            let remaining = frameLimit.map { $0 - captured } ?? Int64.max
            if remaining <= 0 { break }
            let want = Int(min(Int64(pcm.periodFrames), remaining))
            var result = AlsaPCM.ReadResult.frames(0)
            let bytes = [UInt8](unsafeUninitializedCapacity: want * frameBytes) { buffer, count in
                result = pcm.read(into: buffer.baseAddress!, frames: want)
                if case .frames(let n) = result { count = n * frameBytes } else { count = 0 }
            }
            switch result {
            case .frames(let n) where n > 0:
                let now = Int64(SystemClock.wallUSec())
                // A PCM not paced by hardware waits for the writer once four periods are queued, so a replay
                // holds the memory of a real device's steady state, not ten seconds of backlog.
                let waitLimit = min(maxQueuedBytes, 4 * pcm.periodFrames * frameBytes)
                while settings.waitForWriter, !isStopRequested,
                    queuedBytes.load(ordering: .relaxed) + bytes.count > waitLimit
                {
                    SystemClock.sleepOnThread(usec: 1000)
                }
                if queuedBytes.load(ordering: .relaxed) + bytes.count > maxQueuedBytes {
                    overruns.add(1, ordering: .relaxed)
                    queue.push(.overrun(atFrame: captured, writerBehind: true))
                    afterGap = true
                    continue
                }
                queuedBytes.add(bytes.count, ordering: .relaxed)
                queue.push(
                    .chunk(
                        AudioChunk(
                            bytes: bytes, firstFrame: captured, frames: n,
                            captureUSec: now - format.usec(frames: Int64(n)),
                            afterGap: afterGap)))
                afterGap = false
                captured += Int64(n)
                framesCaptured.store(captured, ordering: .relaxed)
                if pace {
                    SystemClock.sleepOnThread(usec: startMonotonic + format.usec(frames: captured) - Int64(SystemClock.monotonicUSec()))
                }
            case .frames:
                continue
            case .overrun:
                overruns.add(1, ordering: .relaxed)
                queue.push(.overrun(atFrame: captured, writerBehind: false))
                afterGap = true
            case .failed(let error):
                return .failed(error, frames: captured)
            }
        }
        return .ended(frames: captured)
    }
}
