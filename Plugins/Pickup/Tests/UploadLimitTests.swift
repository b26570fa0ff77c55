import BerthKit
import BerthTestSupport
import Foundation
import Testing

@testable import PickupPlugin

/// Uploads are capped (`max_upload_bytes`); large artifacts travel as a file descriptor (`DeployFd`), read up to
/// `max_artifact_bytes`, and the descriptor is closed (issue 13).
@Suite struct UploadLimitTests {
    @Test func limitsHaveDocumentedDefaultsAndTakeSizeUnits() throws {
        let defaults = try PickupConfig.parse(nil)
        #expect(defaults.maxUploadBytes == 16 << 20 && defaults.maxArtifactBytes == 256 << 20)
        let set = try PickupConfig.parse(
            YAMLParser.parse("pickup: {max_upload_bytes: 64K, max_artifact_bytes: 1.5G}", file: "t")?["pickup"])
        #expect(set.maxUploadBytes == 64 << 10 && set.maxArtifactBytes == 3 << 29)
        #expect(throws: BerthError.self) {
            try PickupConfig.parse(YAMLParser.parse("pickup: {max_upload_bytes: 0}", file: "t")?["pickup"])
        }
    }

    /// Over the cap: InvalidArgument naming the size and the limit, and nothing deployed; at the cap: deployed.
    @Test func deployOverTheCapIsInvalidArgumentNamingSizeAndLimit() async throws {
        try await TestEnvironment.with { env in
            let pickup = try await PickupHarness.start(env, config: "pickup:\n  max_upload_bytes: 64K\n")
            let over = DBusValue.array(element: "y", Array(repeating: .byte(7), count: (64 << 10) + 1))
            do {
                _ = try await pickup.call("Deploy", [.string("big.bin"), over, .string("files")])
                Issue.record("an upload over max_upload_bytes was accepted")
            } catch let error as DBusError {
                #expect(error.name == "org.berth.Berth1.Error.InvalidArgument", "\(error)")
                #expect(error.message.contains("65537 bytes") && error.message.contains("65536 bytes"), "\(error)")
                #expect(error.message.contains("max_upload_bytes") && error.message.contains("DeployFd"), "\(error)")
            }
            #expect(try await pickup.deployments().isEmpty)
            let fits = DBusValue.array(element: "y", Array(repeating: .byte(7), count: 64 << 10))
            _ = try await pickup.call("Deploy", [.string("big.bin"), fits, .string("files")])
            #expect(try await pickup.waitFor("big.bin").first?.ok == true)
        }
    }

    /// A client passes its descriptor 3 (the file opened by the shell) for `h`: an artifact three times the upload
    /// limit deploys with the right sha256, and berthd keeps no descriptor of the file afterwards. (The sizes are
    /// scaled down by `max_upload_bytes: 1M`: hashing tens of MiB takes a debug build's berthd tens of seconds.)
    @Test func deployFdOfAFileOverTheUploadLimit() async throws {
        try await TestEnvironment.with { env in
            let pickup = try await PickupHarness.start(env, config: "pickup:\n  max_upload_bytes: 1M\n")
            let file = env.root + "/artifact.bin"
            var generator = SystemRandomNumberGenerator()
            let block = (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            var data = Data()
            for index in 0..<3 { data.append(contentsOf: block.map { $0 &+ UInt8(index) }) }
            try data.write(to: URL(fileURLWithPath: file))
            let sha = try await Files.sha256sum(file)
            let reply = try await clientDeployFd(env, fdFrom: "3<'\(file)'", name: "artifact.bin", target: "files")
            #expect(reply.status == 0, "\(reply)")
            let outcome = try #require(try await pickup.waitFor("artifact.bin", timeout: .seconds(120)).first)
            #expect(outcome.ok && outcome.detail == sha, "\(outcome)")
            #expect(reply.stdout == outcome.id + "\n", "\(reply)")
            #expect(try await Files.sha256sum(pickup.stateDir + "/published/artifact.bin") == sha)
            let row = try #require(try await pickup.deployments().first)
            #expect(row[1] == "artifact.bin" && row[3] == "deployed" && row[4] == sha, "\(row)")
            #expect(try await openDescriptors(of: file, pickup).isEmpty)
        }
    }

    /// A pipe within the limit deploys; over it (`max_artifact_bytes`) is InvalidArgument naming the limit; a bad
    /// name or target is refused before anything is read; no descriptor is left open in berthd.
    @Test func deployFdFromAPipeAndItsRefusals() async throws {
        try await TestEnvironment.with { env in
            let pickup = try await PickupHarness.start(env, config: "pickup:\n  max_artifact_bytes: 1M\n")
            let small = try await clientDeployFd(
                env, fdFrom: "0<&0", name: "piped.txt", target: "files", pipe: "printf 'hello from a pipe'")
            #expect(small.status == 0, "\(small)")
            #expect(try await pickup.waitFor("piped.txt").first?.detail == Files.sha256(of: "hello from a pipe"))

            let big = try await clientDeployFd(
                env, fdFrom: "0<&0", name: "huge.bin", target: "files", pipe: "head -c 2000000 /dev/zero")
            #expect(big.status != 0 && big.stderr.contains("over the limit of 1048576 bytes"), "\(big)")
            #expect(big.stderr.contains("max_artifact_bytes"), "\(big)")

            let file = env.root + "/plain.txt"
            try Files.write(file, "plain")
            let badName = try await clientDeployFd(env, fdFrom: "3<'\(file)'", name: "../x", target: "files")
            #expect(badName.status != 0 && badName.stderr.contains("plain name"), "\(badName)")
            let badTarget = try await clientDeployFd(env, fdFrom: "3<'\(file)'", name: "plain.txt", target: "nowhere")
            #expect(badTarget.status != 0 && badTarget.stderr.contains("nowhere"), "\(badTarget)")
            let folder = try await clientDeployFd(env, fdFrom: "3<'\(env.root)'", name: "dir.txt", target: "files")
            #expect(folder.status != 0 && folder.stderr.contains("a folder"), "\(folder)")
            // A file of /proc is refused as DeployFile refuses it: its size says nothing of its content.
            let proc = try await clientDeployFd(env, fdFrom: "3</proc/self/status", name: "status.txt", target: "files")
            #expect(proc.status != 0 && proc.stderr.contains("a file of procfs (/proc)"), "\(proc)")
            #expect(pickup.outcomes(named: "huge.bin").isEmpty && pickup.outcomes(named: "plain.txt").isEmpty)
            #expect(pickup.outcomes(named: "status.txt").isEmpty)
            #expect(try await openDescriptors(of: file, pickup).isEmpty)
            #expect(try await openDescriptors(of: env.root, pickup).isEmpty)
        }
    }

    /// berthctl pickup deploy --fd opens the file itself and passes the descriptor: a file over the upload cap.
    @Test func berthctlDeployWithFd() async throws {
        try await TestEnvironment.with { env in
            let pickup = try await PickupHarness.start(env, config: "pickup:\n  max_upload_bytes: 64K\n")
            let file = env.root + "/site.tar"
            try Data(repeating: 0x5a, count: 1 << 20).write(to: URL(fileURLWithPath: file))
            let sha = try await Files.sha256sum(file)
            let result = try await env.berthctl(["pickup", "deploy", "--fd", file])
            #expect(result.status == 0 && result.stdout.hasPrefix("deployed site.tar to files"), "\(result)")
            #expect(result.stdout.contains("sha256 \(sha)"), "\(result)")
            let row = try #require(try await pickup.deployments().first)
            #expect(row[3] == "deployed" && row[4] == sha, "\(row)")
        }
    }

    /// Calls DeployFd from python3-dbus (busctl 252 cannot pass descriptors: "UNIX file descriptor not supported as
    /// type"), passing its own descriptor `number`, opened by the shell: `fdFrom` is the redirection (`3<file`), or
    /// `0<&0` with `pipe` feeding the client's stdin. Prints the reply, or the error's name and message on stderr.
    func clientDeployFd(
        _ env: TestEnvironment, fdFrom redirection: String, name: String, target: String, pipe: String? = nil
    ) async throws -> CommandResult {
        let number = redirection.prefix { $0.isNumber }
        let script = """
            import dbus, sys
            bus = dbus.bus.BusConnection(sys.argv[1])
            pickup = dbus.Interface(bus.get_object("org.berth.Berth1", "\(PickupHarness.path)"), "\(PickupHarness.interface)")
            try:
                print(pickup.DeployFd(dbus.types.UnixFd(int(sys.argv[2])), sys.argv[3], sys.argv[4], timeout=300))
            except dbus.DBusException as error:
                sys.exit(error.get_dbus_name() + ": " + error.get_dbus_message())
            """
        let call = "exec /usr/bin/python3 -c \"$0\" '\(env.bus.address)' \(number) '\(name)' '\(target)' \(redirection)"
        return try await env.run(["sh", "-c", pipe.map { "\($0) | \(call)" } ?? call, script], timeout: .seconds(300))
    }

    /// berthd's descriptors that point at `path` (from /proc).
    func openDescriptors(of path: String, _ pickup: PickupHarness) async throws -> [String] {
        let pid =
            try await pickup.client.getProperty(
                "org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager", "DaemonPID"
            ).uint32 ?? 0
        let dir = "/proc/\(pid)/fd"
        return try FileManager.default.contentsOfDirectory(atPath: dir).filter {
            (try? FileManager.default.destinationOfSymbolicLink(atPath: dir + "/" + $0)) == path
        }
    }
}
