import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// The test harness itself: a world that waits for something that never comes fails at its time limit rather than
/// holding the whole run (two CI runs once stalled on a signal that never came).
@Suite struct WorldTimeLimitTests {
    @Test(.timeLimit(.minutes(1))) func aWaitForASignalThatNeverComesEndsAtTheTimeLimit() async throws {
        let start = ContinuousClock.now
        await withKnownIssue("the world's time limit passes") {
            try await TestEnvironment.with(timeLimit: .seconds(2)) { env in
                let client = try env.connect()
                defer { client.close() }
                let never = try await client.signals(interface: "org.berth.Test.Never", member: "Never")
                var iterator = never.makeAsyncIterator()
                let signal = await iterator.next()
                #expect(signal == nil, "the stream ends when the task is cancelled")
            }
        }
        let took = ContinuousClock.now - start
        #expect(took >= .seconds(2) && took < .seconds(20), "\(took)")
    }
}
