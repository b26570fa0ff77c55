import BerthKit
import BerthTestSupport
import Foundation
import Synchronization

/// berthd with the four shipped plugins on a private bus, the objects a hostile client would find (services, an
/// instance, jobs, a pickup folder), the hostile fixtures, an RSS watchdog, and the check that nothing was
/// written outside berthd's folders.
final class HostileWorld: @unchecked Sendable {
    static let name = "org.berth.Berth1"
    static let plugins = [
        "libServicesPlugin.so", "libPickupPlugin.so", "libInstancesPlugin.so", "libRecorderPlugin.so",
    ]

    let env: TestEnvironment
    let settings: FuzzSettings
    let fixtures: FuzzFixtures
    var client: BusConnection
    private(set) var daemon: DaemonProcess
    /// What the fuzzer is doing now, for the watchdog's message.
    let current = Mutex<String>("setup")
    /// Messages from the watchdog (berthd killed for its RSS).
    let watchdogFindings = Mutex<[String]>([])
    let peakRSS = Mutex<Int>(0)
    private var watchdog: Task<Void, Never>?
    private let daemonBox = Mutex<DaemonProcess?>(nil)
    private var pipeWriter: Int32 = -1
    private var openFDs: [Int32] = []
    private var outsideBefore: Set<String> = []
    private var cwdBefore: Set<String> = []
    private var cwd = ""
    /// Ids of the objects created at setup.
    var instanceIDs: [String] = []
    var jobIDs: [UInt32] = []

    var fixturesDir: String { env.root + "/fixtures" }
    var pickupDir: String { fixturesDir + "/pickup" }
    var pickupDir2: String { fixturesDir + "/pickup2" }

    private init(
        env: TestEnvironment, settings: FuzzSettings, fixtures: FuzzFixtures, client: BusConnection,
        daemon: DaemonProcess
    ) {
        self.env = env
        self.settings = settings
        self.fixtures = fixtures
        self.client = client
        self.daemon = daemon
    }

    static func start(_ env: TestEnvironment, settings: FuzzSettings) async throws -> HostileWorld {
        let dir = env.root + "/fixtures"
        let outside = env.root + "/outside"
        for d in [dir, dir + "/pickup", dir + "/pickup2", dir + "/folder", outside] {
            try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        }
        guard mkfifo(dir + "/fifo.yaml", 0o600) == 0 else {
            throw TestFailure("mkfifo: \(String(cString: strerror(errno)))")
        }
        let sparse = open(dir + "/big.bin", O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
        guard sparse >= 0, ftruncate(sparse, 1 << 40) == 0 else { throw TestFailure("cannot make a 1 TiB sparse file") }
        close(sparse)
        let base = 20000 + Int(settings.seed % 100) * 100
        let config = """
            services:
              units:
                alpha: { exec: [sleep, "300"], description: "fuzz alpha" }
            instances:
              ports: \(base)-\(base + 99)
              stop_timeout: 2s
            recorder:
              device: fuzz
              alsa_config: 'pcm.fuzz { type null }'
              min_free_bytes: 0
            """
        try FileSystem.writeAtomically(dir + "/import.yaml", text: config + "\n")
        try env.writeConfig(config + "\n")
        try env.installPlugins(plugins)
        var fds: [(String, Int32)] = []
        let regular = open(dir + "/import.yaml", O_RDONLY | O_CLOEXEC)
        fds.append(("a regular file", regular))
        var p: [Int32] = [0, 0]
        guard pipe(&p) == 0 else { throw TestFailure("pipe failed") }
        fds.append(("a pipe that never ends", p[0]))
        let zero = open("/dev/zero", O_RDONLY | O_CLOEXEC)
        fds.append(("/dev/zero", zero))
        let folder = open(dir + "/folder", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        fds.append(("a folder", folder))
        let fixtures = FuzzFixtures(
            escapeName: "berth-fuzz-escape-\(getpid())-\(settings.seed)", outsideDir: outside, fifo: dir + "/fifo.yaml",
            sparseTiB: dir + "/big.bin", directory: dir + "/folder", regularYAML: dir + "/import.yaml", fds: fds)

        let outsideBefore = listOutside(env)
        let daemon = try await env.startDaemon()
        let world = HostileWorld(
            env: env, settings: settings, fixtures: fixtures, client: try env.connect(), daemon: daemon)
        world.pipeWriter = p[1]
        world.openFDs = [regular, p[0], zero, folder]
        world.outsideBefore = outsideBefore
        world.cwd = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(daemon.pid)/cwd")) ?? ""
        world.cwdBefore = Set((try? FileManager.default.contentsOfDirectory(atPath: world.cwd)) ?? [])
        world.daemonBox.withLock { $0 = daemon }
        world.startWatchdog()
        return world
    }

    // MARK: Objects

    func call(_ path: String, _ iface: String, _ member: String, _ args: [DBusValue] = []) async throws -> [DBusValue] {
        try await client.call(Self.name, path, iface, member, args, timeout: .seconds(20))
    }

    /// Creates what a hostile client would find on a busy host: a started and a stopped service (jobs), a service
    /// to remove, two instances, a pickup folder with a deployed file and a recording job.
    func createObjects() async throws {
        try await waitUntil("every plugin's object answers", timeout: .seconds(20)) {
            for (path, iface, prop) in [
                ("/org/berth/Berth1/services", "org.berth.Berth1.Services", "Autolaunch"),
                ("/org/berth/Berth1/pickup", "org.berth.Berth1.Pickup", "Paused"),
                ("/org/berth/Berth1/recorder", "org.berth.Berth1.Recorder", "State"),
            ] {
                guard (try? await client.getProperty(Self.name, path, iface, prop)) != nil else { return false }
            }
            return true
        }
        let services = ("/org/berth/Berth1/services", "org.berth.Berth1.Services")
        for name in ["beta", "gamma", "victim"] {
            _ = try await call(services.0, services.1, "Define", [.string(name), .string("exec: [sleep, \"300\"]")])
        }
        jobIDs.append(try await call(services.0, services.1, "Start", [.string("beta")])[0].uint32 ?? 0)
        jobIDs.append(try await call(services.0, services.1, "Stop", [.string("gamma")])[0].uint32 ?? 0)
        jobIDs.append(try await call(services.0, services.1, "Start", [.string("alpha")])[0].uint32 ?? 0)
        let instances = ("/org/berth/Berth1/instances", "org.berth.Berth1.Instances")
        for _ in 0..<2 {
            instanceIDs.append(
                try await call(instances.0, instances.1, "New", [.string("{\"application_name\": \"web\"}")])[0].string
                    ?? "")
        }
        let pickup = ("/org/berth/Berth1/pickup", "org.berth.Berth1.Pickup")
        _ = try await call(
            pickup.0, pickup.1, "AddDirectory",
            [.string("fuzzdir"), .string(pickupDir), .string("files"), .vardict([])])
        _ = try await call(
            pickup.0, pickup.1, "Deploy",
            [.string("fuzz.txt"), .array(element: "y", Array("hello\n".utf8).map { .byte($0) }), .string("files")])
        // A recording job that lasts while the fuzzer runs (the recorder may have no device: then no job).
        if let reply = try? await call(
            "/org/berth/Berth1/recorder", "org.berth.Berth1.Recorder", "RecordNow", [.double(120)])
        {
            jobIDs.append(reply[0].uint32 ?? 0)
        }
    }

    /// The arguments a member gets when another of its arguments is the edge value: values that pass the first
    /// checks, so that an edge value reaches code past them.
    func baseArguments(_ iface: String, _ member: String, _ types: [String], object: IntrospectedObject) -> [DBusValue]
    {
        let short = iface.split(separator: ".").last.map(String.init) ?? iface
        let firstBerth = object.interfaces.first { $0.name.hasPrefix("org.berth.") }
        let bytes = DBusValue.array(element: "y", Array("hello\n".utf8).map { .byte($0) })
        let known: [DBusValue]? =
            switch (short, member) {
            case ("Manager", "CancelJob"): [.uint32(jobIDs.first ?? 1)]
            case ("Manager", "ImportConfig"): [.string(fixtures.regularYAML), .bool(false), .bool(true)]
            case ("Services", "Lookup"), ("Services", "Start"), ("Services", "Stop"), ("Services", "Restart"):
                [.string("beta")]
            case ("Services", "Define"): [.string("fuzzdef"), .string("exec: [sleep, \"300\"]")]
            case ("Services", "Remove"): [.string("victim")]
            case ("Service", "Logs"), ("Instance", "Logs"): [.uint32(10)]
            case ("Pickup", "AddDirectory"): [.string("fuzzdir2"), .string(pickupDir2), .string("files"), .vardict([])]
            case ("Pickup", "RemoveDirectory"): [.string("fuzzdir2")]
            case ("Pickup", "Deploy"): [.string("fuzz.txt"), bytes, .string("files")]
            case ("Pickup", "DeployFile"): [.string(fixtures.regularYAML), .string("files")]
            case ("Pickup", "DeployFd"): [.unixFD(fixtures.fds[0].1), .string("fuzz-fd.txt"), .string("files")]
            case ("Pickup", "ListDeployments"): [.uint32(10)]
            case ("Pickup", "Undeploy"), ("Pickup", "Rollback"): [.string("fuzz.txt"), .string("files")]
            case ("Instances", "New"): [.string("{\"application_name\": \"web\"}")]
            case ("Instances", "Start"), ("Instances", "Stop"): [.string(instanceIDs.first ?? "web-x")]
            case ("Instances", "Destroy"): [.string(instanceIDs.last ?? "web-x")]
            case ("Instances", "Deploy"): [.string("web"), .string(fixtures.directory), .vardict([])]
            case ("Instances", "Rollback"): [.string("web")]
            case ("Recorder", "StartDeployment"): [.string("fuzz"), .double(0), .double(0), .vardict([])]
            case ("Recorder", "ListRecordings"): [.uint64(0), .uint32(10)]
            case ("Recorder", "RecordNow"): [.double(1)]
            case ("Properties", "Get"):
                [
                    .string(firstBerth?.name ?? "org.berth.Berth1.Manager"),
                    .string(firstBerth?.properties.first?.name ?? "Version"),
                ]
            case ("Properties", "GetAll"): [.string(firstBerth?.name ?? "org.berth.Berth1.Manager")]
            case ("Properties", "Set"):
                {
                    let writable = object.interfaces.flatMap { i in i.properties.filter(\.writable).map { (i.name, $0) }
                    }.first
                    if let (i, p) = writable {
                        return [.string(i), .string(p.name), .variant(EdgeValues.base(p.type))]
                    }
                    return [
                        .string(firstBerth?.name ?? ""), .string(firstBerth?.properties.first?.name ?? ""),
                        .variant(.string("")),
                    ]
                }()
            default: nil
            }
        if let known, known.map(\.signature) == types { return known }
        // An fd argument gets the regular file (an fd of the test's stdin could be anything).
        return types.map { $0 == "h" ? .unixFD(fixtures.fds[0].1) : EdgeValues.base($0) }
    }

    // MARK: Liveness

    var isRunning: Bool { daemon.isRunning }
    var log: String { daemon.log }
    var outsideCount: Int { outsideBefore.count }
    var workingFolder: String { cwd }

    /// The lines of berthd's log that say why it died (a Swift runtime error, an allocation failure), else its tail.
    var deathNote: String {
        let lines = log.split(separator: "\n")
        let keys = ["Fatal error", "fatal error", "failed to allocate", "Crash", "precondition", "Assertion", "💣"]
        let hits = lines.filter { line in keys.contains { line.contains($0) } }.prefix(3)
        return (hits.isEmpty ? Array(lines.suffix(4)) : Array(hits)).map { String($0.prefix(240)) }.joined(
            separator: " | ")
    }

    /// Ping with a time limit; a broken client connection is replaced once.
    func ping(timeout: Duration = .seconds(5)) async -> String? {
        for attempt in 0..<2 {
            do {
                _ = try await client.call(
                    Self.name, "/org/berth/Berth1", "org.berth.Berth1.Manager", "Ping", timeout: timeout)
                return nil
            } catch let error as DBusError {
                return "\(error.name): \(error.message)"
            } catch {
                if attempt == 0, let fresh = try? env.connect() {
                    client = fresh
                    continue
                }
                return "\(error)"
            }
        }
        return "no connection"
    }

    /// Kills berthd (if it still runs) and starts it again on the same folders.
    func restart() async throws {
        daemon.signal(SIGKILL)
        _ = try? await daemon.waitForExit(timeout: .seconds(10))
        let fresh = try await env.startDaemon()
        daemon = fresh
        daemonBox.withLock { $0 = fresh }
        if let c = try? env.connect() { client = c }
    }

    /// Lets a reader blocked on the FIFO see EOF (a hang on it must not outlive the call that caused it).
    func releaseFIFO() {
        let fd = open(fixtures.fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
        if fd >= 0 { close(fd) }
    }

    /// A second client pings berthd every 50 ms while the fuzzer works: a Ping that waits longer than the stall
    /// limit means the call in progress held up everyone (issue 13: nothing slow on the bus or epoll thread).
    let stallFindings = Mutex<[String: Duration]>([:])
    let slowestPing = Mutex<Duration>(.zero)
    private var stallProbe: Task<Void, Never>?

    func startStallProbe() throws {
        let connection = try env.connect()
        let limit = settings.stallLimit
        stallProbe = Task.detached { [weak self] in
            while !Task.isCancelled {
                guard let self else { return }
                let before = self.current.withLock { $0 }
                let start = ContinuousClock.now
                let ok =
                    (try? await connection.call(
                        Self.name, "/org/berth/Berth1", "org.berth.Berth1.Manager", "Ping", timeout: .seconds(60)))
                    != nil
                let took = ContinuousClock.now - start
                let after = self.current.withLock { $0 }
                if ok {
                    self.slowestPing.withLock { $0 = max($0, took) }
                    if took > limit {
                        let what = before == after ? before : "\(before) (then \(after))"
                        self.stallFindings.withLock { $0[what] = max($0[what] ?? .zero, took) }
                    }
                }
                try? await Task.sleep(for: .milliseconds(50))
            }
            connection.close()
        }
    }

    private func startWatchdog() {
        let limit = settings.rssLimitBytes
        watchdog = Task.detached { [weak self] in
            while !Task.isCancelled {
                guard let self else { return }
                if let d = self.daemonBox.withLock({ $0 }), d.isRunning, let rss = Self.rss(d.pid) {
                    self.peakRSS.withLock { $0 = max($0, rss) }
                    if rss > limit {
                        d.signal(SIGKILL)
                        let what = self.current.withLock { $0 }
                        self.watchdogFindings.withLock {
                            $0.append(
                                "berthd's RSS passed \(rss >> 20) MiB (limit \(limit >> 20) MiB) during \(what): killed"
                            )
                        }
                    }
                }
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    static func rss(_ pid: Int32) -> Int? { procStatusKiB(pid, "VmRSS").map { $0 * 1024 } }

    // MARK: Writes outside

    /// Every path under the test's folder except berthd's own folders, the fixtures and the harness's files.
    static func listOutside(_ env: TestEnvironment) -> Set<String> {
        let allowed = [
            env.configHome + "/berth", env.stateHome + "/berth", env.runtimeDir + "/berth", env.root + "/fixtures",
        ]
        var out: Set<String> = []
        let enumerator = FileManager.default.enumerator(atPath: env.root)
        while let relative = enumerator?.nextObject() as? String {
            let full = env.root + "/" + relative
            if allowed.contains(where: { full == $0 || full.hasPrefix($0 + "/") }) {
                enumerator?.skipDescendants()
                continue
            }
            if relative.hasPrefix("berthd-") && relative.hasSuffix(".log") { continue }
            out.insert(relative)
        }
        return out
    }

    /// What berthd wrote outside its folders: new paths in the test's folder, in berthd's working folder, and
    /// the escape canary in /tmp and /.
    func writesOutside() -> [String] {
        var found = Self.listOutside(env).subtracting(outsideBefore).sorted().map { env.root + "/" + $0 }
        let cwdNow = Set((try? FileManager.default.contentsOfDirectory(atPath: cwd)) ?? [])
        found += cwdNow.subtracting(cwdBefore).filter { ![".build", ".swiftpm"].contains($0) }.sorted().map {
            cwd + "/" + $0
        }
        for candidate in [
            "/tmp/" + fixtures.escapeName, "/" + fixtures.escapeName, env.root + "/" + fixtures.escapeName,
        ] {
            if FileManager.default.fileExists(atPath: candidate) { found.append(candidate) }
        }
        return Array(Set(found)).sorted()
    }

    func cleanUp() {
        watchdog?.cancel()
        stallProbe?.cancel()
        for fd in openFDs + [pipeWriter] where fd >= 0 { close(fd) }
        releaseFIFO()
        for candidate in ["/tmp/" + fixtures.escapeName, "/" + fixtures.escapeName] {
            try? FileManager.default.removeItem(atPath: candidate)
        }
    }
}
