import BerthTestSupport
import Glibc
import Synchronization
import Testing

@testable import BerthKit

/// Jobs on a real private bus: a finished job (and its bus object) is released after the retention time, a cancel
/// that comes before the task is attached still reaches the task, and a cancelled job ends when its work stopped.
@Suite struct JobLifetimeTests {
    final class Weak<T: AnyObject>: @unchecked Sendable {
        weak var value: T?
        init(_ value: T) { self.value = value }
    }

    static func registry(_ env: TestEnvironment, retention: Duration) throws -> (JobRegistry, BusConnection) {
        let connection = try env.connect()
        var logger = Logger(label: "test.jobs")
        logger.logLevel = .critical
        return (JobRegistry(connection: connection, logger: logger, retention: retention), connection)
    }

    @Test(.timeLimit(.minutes(1))) func finishedJobsAndTheirObjectsAreReleased() async throws {
        try await TestEnvironment.with { env in
            let (registry, connection) = try Self.registry(env, retention: .milliseconds(50))
            defer { connection.close() }
            var jobs: [Weak<Job>] = []
            var objects: [Weak<BusObject>] = []
            for i in 0..<150 {
                let job: Job
                switch i % 3 {
                case 0:  // runs to the end
                    job = try await registry.start(plugin: "test", operation: "done \(i)") { job in job.log("hello") }
                case 1:  // cancelled while it waits
                    job = try await registry.start(plugin: "test", operation: "cancel \(i)") { _ in
                        try await Task.sleep(for: .seconds(60))
                    }
                    job.cancel()
                default:  // ended by its owner
                    job = try await registry.create(plugin: "test", operation: "create \(i)")
                    job.finish(.failed(.failed("job \(i) failed on purpose")))
                }
                _ = await job.wait()
                jobs.append(Weak(job))
                objects.append(Weak(job.object))
            }
            // A job leaves the running list just after its waiters are resumed (Job.finish): wait for it.
            try await waitUntil("no job is running", timeout: .seconds(10)) { registry.running.isEmpty }
            try await waitUntil("every finished job is released", timeout: .seconds(10)) {
                jobs.allSatisfy { $0.value == nil }
            }
            try await waitUntil("every job object is released after the retention", timeout: .seconds(10)) {
                // The bus thread keeps its last batch of work (the last remove()) until its next turn: give it one.
                try await connection.run {}
                return objects.allSatisfy { $0.value == nil }
            }
        }
    }

    @Test(.timeLimit(.minutes(1))) func aCancelBeforeTheTaskIsAttachedCancelsTheTask() async throws {
        try await TestEnvironment.with { env in
            let (registry, connection) = try Self.registry(env, retention: .milliseconds(50))
            defer { connection.close() }
            // The window of `start`: the job is on the bus (a client can call Cancel), its task not attached yet.
            let job = try await registry.create(plugin: "test", operation: "race", hasTask: true)
            let client = try env.connect()
            defer { client.close() }
            let name = try await connection.uniqueName()
            _ = try await client.call(name, job.path, "org.berth.Berth1.Job", "Cancel")
            #expect(job.result == nil, "a job with a task to come ends when its task does")
            let task = Task {
                let slept: Void? = try? await Task.sleep(for: .seconds(60))
                job.finish(slept == nil ? .canceled : .done)
            }
            job.attach(task)
            let result = await job.wait()
            #expect(result == .canceled)
            #expect(task.isCancelled)
        }
    }

    @Test(.timeLimit(.minutes(1))) func aCanceledJobEndsWhenItsWorkHasStopped() async throws {
        try await TestEnvironment.with { env in
            let (registry, connection) = try Self.registry(env, retention: .milliseconds(50))
            defer { connection.close() }
            let cleanedUp = Shared(false)
            let started = Shared(false)
            let job = try await registry.start(plugin: "test", operation: "slow cleanup") { _ in
                started.with { $0 = true }
                do {
                    try await Task.sleep(for: .seconds(60))
                } catch {
                    // Work that takes a while to wind down (a child to stop): the job is not over before it is.
                    _ = try? await OSThread.run(name: "test-cleanup") { usleep(200_000) }
                    cleanedUp.with { $0 = true }
                    throw error
                }
            }
            try await waitUntil("the job's work runs") { started.get }
            job.cancel()
            #expect(job.result == nil, "canceled before its work stopped")
            let result = await job.wait()
            #expect(result == .canceled)
            #expect(cleanedUp.get, "the job ended before its work had stopped")
            let state = job.object.get("State")
            #expect(state == .string("canceled"))
        }
    }
}
