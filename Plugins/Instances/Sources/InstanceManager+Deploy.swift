import BerthKit
import Synchronization

/// Rolling deployment: new instance → install code → start → healthy for min_ready → switch the front end →
/// stop (and destroy, beyond `keep`) the old ones. Before the switch any failure destroys the new instance and
/// leaves the old one serving untouched; a crash is settled at the next start (`recover`).
extension InstanceManager {
    /// Reserves `application` for one deploy or rollback; a second one gets `Busy`.
    func reserve(_ application: String) throws {
        guard !deploying.contains(application) else {
            throw BerthError.busy("a deploy of application \"\(application)\" is already running; wait for its job")
        }
        deploying.insert(application)
    }

    func release(_ application: String) { deploying.remove(application) }

    /// The instances of an application that run now (or should).
    func running(of application: String) -> [Instance] {
        instances.values.filter { $0.application == application && !$0.record.destroying && $0.record.running }
            .sorted { $0.record.createdUSec < $1.record.createdUSec }
    }

    /// `id`: the new instance's folder, made before the job started (`reserveInstance`), so that the job's name
    /// says which instance it deploys.
    func deploy(_ request: DeployRequest, id: String, job: Job) async throws {
        let app = request.application
        let step = StepLog(job: job, total: 7)
        var config: InstanceConfig
        if let json = request.configJSON {
            config = try InstanceConfig.parse(json, defaults: settings.health)
            if config.application.isEmpty { config.application = app }
            guard config.application == app else {
                throw BerthError.invalidArgument(
                    "option config names application \"\(config.application)\", but the deploy is of \"\(app)\"")
            }
        } else if let current = store.current(app).flatMap({ instances[$0] }) {
            config = current.record.config
        } else {
            config = try InstanceConfig.parse(
                "{\"application_name\": \(JSONText.quote(app)), \"services\": [{\"type\": \"listen\", \"name\": \"web\"}]}",
                defaults: settings.health)
        }
        var health = config.health ?? settings.health
        if let check = request.health { health.check = try HealthSpec.parseCheck(check, what: "option health") }
        if let timeout = request.timeout { health.timeout = timeout }
        if let minReady = request.minReady { health.minReady = minReady }
        // The check this deploy uses stays with the instance: a Rollback to it checks it the same way.
        if request.health != nil || request.timeout != nil || request.minReady != nil {
            config = config.with(health: health)
        }
        let old = running(of: app)
        let previous = store.current(app)

        step.next("creating a new instance of \"\(app)\"")
        let instance = try await create(config: config, deployPending: true, replaces: old.map(\.id), id: id)
        job.log("new instance \(instance.id)\(instance.record.port > 0 ? " on port \(instance.record.port)" : "")")
        do {
            step.next("installing \(request.sourcePath) into \(instance.folder)")
            try await install(request.source, into: instance)
            step.next("starting \(instance.id)")
            try await start(instance.id)
            step.next(
                "waiting for health check \(health.checkText) (timeout \(health.timeout), min_ready \(health.minReady))"
            )
            try await waitHealthy(instance, health) { job.log($0) }
            step.next("switching the front end of \"\(app)\" to \(instance.id)")
            try await switchFrontEnd(app: app, to: instance, previous: previous, log: { job.log($0) })
            try markServed(instance)
        } catch {
            let reason = BerthError.wrapping(error)
            job.log("deploy failed: \(reason.message)")
            job.log(
                "destroying \(instance.id); \(old.isEmpty ? "nothing else changed" : "\(old.map(\.id).joined(separator: ", ")) still serving")"
            )
            try? instance.update {
                $0.destroying = true
                $0.running = false
            }
            try? await finishDestroy(instance)
            let prefix = "deploy of \"\(app)\" from \"\(request.sourcePath)\" failed"
            throw BerthError(reason.code == .cancelled ? .cancelled : reason.code, "\(prefix): \(reason.message)")
        }
        try instance.update { $0.deployPending = false }
        step.next("stopping the old instance(s): \(old.isEmpty ? "none" : old.map(\.id).joined(separator: ", "))")
        if !old.isEmpty && settings.drain > .zero {
            job.log("draining for \(settings.drain) so the front end finishes requests to the old instance")
            try? await Task.sleep(for: settings.drain)
        }
        try await retire(old.map(\.id), app: app, keep: request.keep ?? settings.keep, log: { job.log($0) })
        try instance.update { $0.replaces = [] }
        step.next("deployed \(instance.id) as \"\(app)\"")
    }

    /// Copies a folder (`cp -a`) or unpacks an archive (`tar -xf`) into the instance folder; `server` must result.
    func install(_ source: DeployRequest.Source, into instance: Instance) async throws {
        let argv: [String]
        switch source {
        case .folder(let path): argv = ["cp", "-a", "--", path + "/.", instance.folder + "/"]
        case .archive(let path): argv = ["tar", "-xf", path, "-C", instance.folder, "--no-same-owner"]
        }
        let outcome = try await runner.run("install-" + instance.id, argv, timeout: .seconds(300))
        guard outcome.succeeded else {
            throw BerthError.failed("\(argv[0]) \(outcome.reason)")
        }
        try instance.checkServer()
    }

    /// Writes the front end for `instance`; if the reload fails, points it back at `previous`.
    func switchFrontEnd(
        app: String, to instance: Instance, previous: String?, log: @escaping @Sendable (String) -> Void
    )
        async throws
    {
        let frontEnd = self.frontEnd
        do {
            try await frontEnd.switchTo(app: app, instance: instance.id, port: instance.record.port, log: log)
        } catch {
            if let previous, let old = instances[previous] {
                try? await frontEnd.switchTo(app: app, instance: previous, port: old.record.port, log: log)
            } else {
                try? store.setCurrent(app, nil)
            }
            throw error
        }
        for other in instances.values where other.application == app { other.publish(other.process.snapshot) }
    }
}

/// Numbered step lines and Progress for a job.
final class StepLog: Sendable {
    let job: Job
    let total: Int
    private let done = Mutex(0)
    init(job: Job, total: Int) {
        self.job = job
        self.total = total
    }
    func next(_ message: String) {
        let n = done.withLock { n -> Int in
            n += 1
            return n
        }
        job.log("[\(n)/\(total)] \(message)")
        job.progress(Double(n - 1) / Double(total))
    }
}
