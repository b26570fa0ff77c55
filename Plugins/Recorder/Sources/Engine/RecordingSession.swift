import BerthKit

/// One run of the device: a capture thread and a writer thread joined by a queue, from opening the PCM to the
/// last file published. Async code awaits `run()`; cancelling it (or `stop()`) ends the capture within about a
/// period, and the file in progress is finished cleanly.
final class RecordingSession: Sendable {
    let plan: SessionPlan
    let capture: Capture
    private let queue = BlockingQueue<CaptureItem>()
    private let writerSetup: @Sendable (_ requestStop: @escaping @Sendable () -> Void) -> SegmentWriter

    init(
        settings: CaptureSettings, plan: SessionPlan, pace: Bool, layout: RecordingLayout, store: MetadataStore,
        hooks: SegmentWriter.Hooks, logger: Logger
    ) {
        self.plan = plan
        capture = Capture(settings: settings, frameLimit: plan.totalFrames, pace: pace, queue: queue)
        writerSetup = { requestStop in
            SegmentWriter(
                plan: plan, format: settings.format, layout: layout, store: store, hooks: hooks, logger: logger,
                requestStop: requestStop)
        }
    }

    /// Starts both threads and waits for the session to end.
    func run() async -> SessionResult {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<SessionResult, Never>) in
                let capture = self.capture
                do {
                    try OSThread.start(name: "berth-writer") { [self] in
                        let writer = writerSetup { capture.stop() }
                        while true {
                            let item = queue.pop()
                            if case .chunk(let chunk) = item { capture.consumed(bytes: chunk.bytes.count) }
                            if !writer.handle(item) { break }
                        }
                        var result = writer.result
                        result.cpuUSec = Int64(SystemClock.threadCPUUSec()) + capture.cpuUSec.load(ordering: .relaxed)
                        continuation.resume(returning: result)
                    }
                } catch {
                    continuation.resume(returning: SessionResult(error: .wrapping(error)))
                    return
                }
                capture.start()
            }
        } onCancel: {
            capture.stop()
        }
    }

    func stop() { capture.stop() }
}
