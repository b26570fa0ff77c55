import BerthKit
import Synchronization

/// One instance at run time: its record (kept in step with the file), its supervised process and its object on
/// the bus. The supervisor's changes reach the object's properties from the epoll thread.
final class Instance: Sendable {
    let id: String
    let store: InstanceStore
    let process: SupervisedProcess
    private let state: Mutex<(record: InstanceRecord, object: BusObject?)>
    private let holder = Holder()

    init(record: InstanceRecord, store: InstanceStore, supervisor: Supervisor, settings: InstancesSettings) {
        id = record.id
        self.store = store
        state = Mutex((record, nil))
        let spec = Self.spec(record, store: store, settings: settings)
        let holder = self.holder
        process = supervisor.process(spec) { snapshot in holder.instance?.publish(snapshot) }
        holder.set(self)
    }

    /// Breaks the link from the process's change handler back to this instance (after Destroy).
    func release() { holder.clear() }

    var record: InstanceRecord { state.withLock { $0.record } }
    var application: String { record.application }
    var folder: String { store.folder(id) }
    var object: BusObject? { state.withLock { $0.object } }

    /// Changes the record and writes it atomically before the change counts.
    func update(_ change: (inout InstanceRecord) -> Void) throws {
        var copy = record
        change(&copy)
        try store.write(copy)
        state.withLock { $0.record = copy }
        publish(process.snapshot)
    }

    /// Takes a record the caller has already written.
    func adopt(_ written: InstanceRecord) {
        state.withLock { $0.record = written }
        publish(process.snapshot)
    }

    func attach(_ object: BusObject) {
        state.withLock { $0.object = object }
        publish(process.snapshot)
    }

    /// created|starting|running|stopping|stopped|failed
    func stateName(_ snapshot: SupervisorSnapshot) -> String {
        switch snapshot.state {
        case .inactive: record.everStarted ? "stopped" : "created"
        case .activating: "starting"
        case .active: "running"
        case .deactivating: "stopping"
        case .failed: "failed"
        }
    }

    var stateName: String { stateName(process.snapshot) }

    /// Why it is not running, or nil when it runs.
    var notRunningReason: String? {
        let snapshot = process.snapshot
        guard snapshot.state != .active else { return nil }
        return snapshot.lastError.isEmpty ? stateName(snapshot) : snapshot.lastError
    }

    func publish(_ snapshot: SupervisorSnapshot) {
        let (record, object) = state.withLock { ($0.record, $0.object) }
        guard let object else { return }
        object.set([
            ("State", .string(stateName(snapshot))), ("MainPID", .uint32(UInt32(max(snapshot.mainPID, 0)))),
            ("Active", .bool(store.current(record.application) == record.id)),
            ("LastError", .string(snapshot.lastError)),
        ])
    }

    /// Checks that `server` can run: a clear error instead of a crash loop.
    func checkServer() throws {
        let server = folder + "/server"
        guard FileSystem.exists(server) else {
            throw BerthError.failed(
                "instance \"\(id)\" cannot start: \"\(server)\" does not exist (put the code there)")
        }
        guard FileSystem.isExecutableFile(server) else {
            throw BerthError.failed(
                "instance \"\(id)\" cannot start: \"\(server)\" is not an executable file (chmod +x)")
        }
        if let prerun = record.config.prerun, !FileSystem.exists(folder + "/" + prerun) {
            throw BerthError.failed(
                "instance \"\(id)\" cannot start: its prerun \"\(folder)/\(prerun)\" does not exist")
        }
    }

    static func spec(_ record: InstanceRecord, store: InstanceStore, settings: InstancesSettings) -> ProcessSpec {
        let folder = store.folder(record.id)
        var argv = [folder + "/server"]
        if let prerun = record.config.prerun {
            argv = ["/bin/sh", "-c", ". \"$1\" && exec \"$2\"", "sh", folder + "/" + prerun, folder + "/server"]
        }
        var environment = Dictionary(record.config.environment, uniquingKeysWith: { $1 })
        environment["BERTH_APPCFG"] = store.appConfigPath(record.id)
        environment["BERTH_INSTANCE"] = record.id
        environment["BERTH_APPLICATION"] = record.application
        if record.port > 0 { environment["PORT"] = String(record.port) }
        return ProcessSpec(
            name: record.id, kind: "instance", argv: argv, environment: environment, workingDirectory: folder,
            logPath: store.logPath(record.id), logMaxBytes: settings.logMaxBytes, logKeep: settings.logKeep,
            readiness: .immediate, restart: .onFailure, stopTimeout: settings.stopTimeout)
    }
}

private final class Holder: Sendable {
    private let value = Mutex<Instance?>(nil)
    var instance: Instance? { value.withLock { $0 } }
    func set(_ instance: Instance) { value.withLock { $0 = instance } }
    func clear() { value.withLock { $0 = nil } }
}
