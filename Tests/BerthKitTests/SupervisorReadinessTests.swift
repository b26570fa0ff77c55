import BerthTestSupport
import Glibc
import Testing

@testable import BerthKit

/// Readiness with real clients of each protocol: Debian's systemd-notify, a few lines of Python on the socket,
/// Python's http.server for TCP; and the start timeout.
@Suite(.serialized) struct SupervisorReadinessTests {
    typealias Support = SupervisorTestSupport

    @Test(.timeLimit(.minutes(1))) func systemdNotifyMakesTheServiceReady() async throws {
        let (supervisor, dir) = try Support.makeSupervisor()
        defer { Support.removeTree(dir) }
        let unit = supervisor.process(
            ProcessSpec(
                name: "sdnotify",
                argv: ["sh", "-c", "sleep 0.1; systemd-notify --ready --status='warming done'; exec sleep 300"],
                readiness: .notify, startTimeout: .seconds(20)))
        let started = Support.now
        try await unit.start()
        let millis = Double(Support.now - started) / 1000
        #expect(unit.snapshot.state == .active)
        #expect(unit.snapshot.statusText == "warming done")
        #expect(millis >= 100)
        print("supervisor: spawn → READY=1 from systemd-notify: \(millis) ms")
        await unit.stop()
    }

    @Test(.timeLimit(.minutes(1))) func pythonPublishesItsEndpointThroughTheNotifySocket() async throws {
        let (supervisor, dir) = try Support.makeSupervisor()
        defer { Support.removeTree(dir) }
        let script = """
            import os, socket, time
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            s.connect(os.environ["NOTIFY_SOCKET"])
            s.send(b"READY=1\\nX_BERTH_ENDPOINT=PYRO:obj@127.0.0.1:9999")
            time.sleep(300)
            """
        let unit = supervisor.process(
            ProcessSpec(name: "pyro", argv: ["python3", "-c", script], readiness: .notify, startTimeout: .seconds(20)))
        let started = Support.now
        try await unit.start()
        print("supervisor: spawn → READY=1 from python3: \(Double(Support.now - started) / 1000) ms")
        #expect(unit.snapshot.endpoint == "PYRO:obj@127.0.0.1:9999")
        await unit.stop()
        #expect(unit.snapshot.endpoint == "")
    }

    @Test(.timeLimit(.minutes(1))) func tcpReadinessWaitsForTheListener() async throws {
        let (supervisor, dir) = try Support.makeSupervisor()
        defer { Support.removeTree(dir) }
        let port = UInt16(freePort())
        let unit = supervisor.process(
            ProcessSpec(
                name: "http", argv: ["python3", "-m", "http.server", String(port), "--bind", "127.0.0.1"],
                workingDirectory: dir, readiness: .tcp(port: port), startTimeout: .seconds(20)))
        let started = Support.now
        try await unit.start()
        print("supervisor: spawn → tcp:\(port) accepting (python3 -m http.server): \(Double(Support.now - started) / 1000) ms")
        // The port accepts now.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        let connected = Loopback.connect(fd, port: port)
        close(fd)
        #expect(connected == 0)
        await unit.stop()
    }

    @Test(.timeLimit(.minutes(1))) func notReadyInTimeStopsTheGroupAndFailsTheStart() async throws {
        let (supervisor, dir) = try Support.makeSupervisor()
        defer { Support.removeTree(dir) }
        let recorder = SnapshotRecorder()
        let unit = supervisor.process(
            ProcessSpec(
                name: "slow", argv: ["sh", "-c", "sleep 300 & sleep 300"], readiness: .notify,
                startTimeout: .milliseconds(400)),
            onChange: recorder.record)
        let started = Support.now
        let error = await #expect(throws: BerthError.self) { try await unit.start() }
        let elapsed = Double(Support.now - started) / 1e6
        #expect(error?.code == .timeout)
        #expect(error?.message == "service \"slow\" did not become ready within 0.4 s and was stopped")
        #expect(elapsed >= 0.4 && elapsed < 5)
        #expect(unit.snapshot.state == .failed)
        #expect(unit.snapshot.result == .timeout)
        let group = try #require(recorder.spawnPIDs.first)
        #expect(Support.members(ofGroup: group).isEmpty)
        // No zombie of this unit's group is left unreaped (other tests' children may be exiting right now).
        #expect(ProcStat.all().allSatisfy { !($0.parentPID == getpid() && $0.isZombie && $0.processGroup == group) })
    }

    @Test(.timeLimit(.minutes(1))) func notifyMessagesFromOutsideTheGroupAreIgnored() async throws {
        let (supervisor, dir) = try Support.makeSupervisor()
        defer { Support.removeTree(dir) }
        // The child writes its NOTIFY_SOCKET path to its log; the test (another process group) sends READY=1.
        let unit = supervisor.process(
            ProcessSpec(
                name: "guarded", argv: ["sh", "-c", "echo \"$NOTIFY_SOCKET\"; exec sleep 300"], logPath: dir + "/g.log",
                readiness: .notify, startTimeout: .milliseconds(800)))
        let started = Task { try await unit.start() }
        #expect(await Support.eventually { unit.tail(lines: 1).first?.hasPrefix("/") == true })
        let path = unit.tail(lines: 1)[0]
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
        let sent = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { target in
                "READY=1".withCString { sendto(fd, $0, 7, 0, target, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
        }
        #expect(sent == 7)
        await #expect(throws: BerthError.self) { try await started.value }
        #expect(unit.snapshot.result == .timeout)
    }
}
