import BerthKit
import Glibc

/// The instances and their lifecycle: New, Start, Stop, Destroy, the port pool and the running state that
/// survives a daemon restart. Every change is written to the instance's record before it counts. Record writes
/// (fsync) and folder work block, so the actor runs on a thread of its own.
actor InstanceManager {
    private let executor = ThreadExecutor(name: "berth-instances")
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    let store: InstanceStore
    let supervisor: Supervisor
    let runner: CommandRunner
    let logger: Logger
    var settings: InstancesSettings
    var instances: [String: Instance] = [:]
    /// Applications with a deploy or rollback under way.
    var deploying: Set<String> = []
    private var portCursor = 0
    /// Exports an instance's object (set by the plugin).
    var exporter: (@Sendable (Instance) async throws -> BusObject)?

    init(store: InstanceStore, supervisor: Supervisor, settings: InstancesSettings, logger: Logger) {
        self.store = store
        self.supervisor = supervisor
        self.settings = settings
        self.logger = logger
        runner = CommandRunner(supervisor: supervisor, outputFolder: store.root + "/var/run")
    }

    func setExporter(_ exporter: @escaping @Sendable (Instance) async throws -> BusObject) { self.exporter = exporter }
    func apply(_ settings: InstancesSettings) { self.settings = settings }

    var frontEnd: FrontEnd { FrontEnd(settings: settings, store: store, runner: runner) }

    func instance(_ id: String) throws -> Instance {
        guard let instance = instances[id], !instance.record.destroying else {
            throw BerthError.notFound("instance \"\(id)\" does not exist")
        }
        return instance
    }

    func list() -> [Instance] { instances.values.filter { !$0.record.destroying }.sorted { $0.id < $1.id } }

    // MARK: - New

    /// Creates an instance from its JSON config: folder, record, appcfg.json, resources. Returns it.
    func create(json: String) async throws -> Instance {
        let config = try InstanceConfig.parse(json, defaults: settings.health)
        return try await create(config: config, deployPending: false, replaces: [])
    }

    /// Makes the folder (and so the id) of the instance a deploy will create, before its job starts. A crash
    /// before the record is written leaves a folder without a record, removed at the next start.
    func reserveInstance(application: String) throws -> String {
        try store.createFolder(application: application)
    }

    /// Removes a folder `reserveInstance` made when the deploy ends before creating its instance.
    func releaseReserved(_ id: String) {
        guard instances[id] == nil else { return }
        try? store.removeFiles(id)
    }

    func create(config: InstanceConfig, deployPending: Bool, replaces: [String], id reserved: String? = nil)
        async throws -> Instance
    {
        let id = try reserved ?? store.createFolder(application: config.application)
        do {
            var record = InstanceRecord(id: id, config: config)
            record.createdUSec = SystemClock.wallUSec()
            record.deployPending = deployPending
            record.replaces = replaces
            if config.listens { record.port = try freePort() }
            try writeAppConfig(record)
            try store.write(record)
            let instance = Instance(record: record, store: store, supervisor: supervisor, settings: settings)
            instances[id] = instance
            if let exporter { instance.attach(try await exporter(instance)) }
            logger.info("instance \"\(id)\" created\(record.port > 0 ? " on port \(record.port)" : "")")
            return instance
        } catch {
            instances[id] = nil
            try? store.removeFiles(id)
            try? store.removeRecord(id)
            throw error
        }
    }

    /// appcfg.json: the id, the application, the port, and each resource by name. Derived from the record (and
    /// written again at every daemon start), so it is renamed into place without an fsync: New stays fast.
    func writeAppConfig(_ record: InstanceRecord) throws {
        try FileSystem.makeDirectories(store.runFolder(record.id))
        var services: [(String, JSONText)] = []
        for resource in record.config.resources {
            switch resource {
            case .listen(let name):
                services.append((name, .object([("host", .string("127.0.0.1")), ("port", .int(Int64(record.port)))])))
            case .varFolder(let name):
                let path = store.tempFolder(record.id) + "/" + name
                try FileSystem.makeDirectories(path)
                services.append((name, .string(path)))
            case .persistentFolder(let name):
                let path = store.persistentFolder(record.application, name)
                try FileSystem.makeDirectories(path)
                services.append((name, .string(path)))
            }
        }
        let text = JSONText.object([
            ("id", .string(record.id)), ("application_name", .string(record.application)),
            ("folder", .string(store.folder(record.id))), ("PORT", record.port > 0 ? .int(Int64(record.port)) : .null),
            ("services", .object(services)),
        ]).text
        try Self.replaceQuickly(store.appConfigPath(record.id), text + "\n")
    }

    /// A port from the pool that no instance holds and that 127.0.0.1 can bind now.
    private func freePort() throws -> Int {
        let taken = Set(instances.values.map(\.record.port))
        let range = settings.portRange
        for step in 0..<range.count {
            let port = range.lowerBound + (portCursor + step) % range.count
            guard !taken.contains(port), Self.canBind(port) else { continue }
            portCursor = (portCursor + step + 1) % range.count
            return port
        }
        throw BerthError(
            .busy, "no free port left in the pool \(range.lowerBound)-\(range.upperBound) (instances.ports)")
    }

    /// A temp file renamed over `path`: readers see the old or the new content, never a mix (no fsync).
    static func replaceQuickly(_ path: String, _ text: String) throws {
        let temp = path + ".tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SystemError("cannot create \"\(temp)\"", errno: errno) }
        do {
            defer { close(fd) }
            try FileSystem.writeAll(fd, Array(text.utf8), path: temp)
        }
        if rename(temp, path) != 0 { throw SystemError("cannot rename \"\(temp)\" to \"\(path)\"", errno: errno) }
    }

    static func canBind(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return Loopback.bind(fd, port: UInt16(port)) == 0
    }

    // MARK: - Start, Stop, Destroy

    func start(_ id: String) async throws {
        let instance = try instance(id)
        try instance.checkServer()
        var record = instance.record
        record.running = true
        record.everStarted = true
        // The record's fsync runs beside the spawn instead of before it; a start counts once both are done.
        let store = self.store
        let written = record
        let writing = Task { try await OSThread.run(name: "berth-inst-rec") { try store.write(written) } }
        do {
            try await instance.process.start()
        } catch is CancellationError {
            // A cancelled start stopped the instance: it is not meant to run (nor to come back at the next start).
            _ = try? await writing.value
            try? instance.update { $0.running = false }
            throw CancellationError()
        } catch {
            if (try? await writing.value) != nil { instance.adopt(written) }
            throw error
        }
        try await writing.value
        instance.adopt(written)
    }

    func stop(_ id: String) async throws {
        let instance = try instance(id)
        try instance.update { $0.running = false }
        await instance.process.stop()
    }

    /// Marks the record `destroying` (so a crash from here on is finished at the next start), stops the
    /// instance, removes its files, then its record, then its object.
    func destroy(_ id: String, force: Bool = false, log: @escaping @Sendable (String) -> Void = { _ in })
        async throws
    {
        let instance = try checkDestroy(id, force: force)
        // Forced, of the instance that serves: the front end goes elsewhere first, or it is said that nothing serves.
        await switchAway(from: instance, log: log)
        try instance.update {
            $0.destroying = true
            $0.running = false
        }
        try await finishDestroy(instance)
    }

    func finishDestroy(_ instance: Instance) async throws {
        await instance.process.stop()
        try store.removeFiles(instance.id)
        if store.current(instance.application) == instance.id { try store.setCurrent(instance.application, nil) }
        try store.removeRecord(instance.id)
        instances[instance.id] = nil
        instance.object?.remove()
        instance.release()
        logger.info("instance \"\(instance.id)\" destroyed")
    }

    func reopenLogs() {
        for instance in instances.values {
            do { try instance.process.reopenLogs() } catch {
                logger.error("instance \"\(instance.id)\": cannot reopen its log: \(error)")
            }
        }
    }

    /// Daemon shutdown: stops every process but keeps the records' running state, so they start again.
    func shutdown() async {
        await withTaskGroup(of: Void.self) { group in
            for instance in instances.values { group.addTask { await instance.process.stop() } }
        }
        for instance in instances.values { instance.object?.remove() }
        // The manager's thread exits once this job is done: a stopped plugin keeps no thread.
        executor.stop()
    }
}
