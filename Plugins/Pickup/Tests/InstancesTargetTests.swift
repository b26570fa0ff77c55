import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// The `instances/<app>` target against the real instances plugin: a bundle dropped into `instances/<app>/`
/// starts a rolling deploy and the deployment records the job's result.
@Suite(.serialized) struct InstancesTargetTests {
    static let config = """
        instances:
          health: {check: none, timeout: 10s, min_ready: 0s}
          frontend: {reload: []}
        """

    /// A .tar.gz with `server` at its root (or without it, for the failing case), made with tar.
    func bundle(_ env: TestEnvironment, _ path: String, withServer: Bool) async throws {
        let dir = try Files.makeTemp()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        if withServer {
            try Files.write(dir + "/server", "#!/bin/sh\nexec sleep 300\n")
            chmod(dir + "/server", 0o755)
        } else {
            try Files.write(dir + "/README", "no server here\n")
        }
        let r = try await env.run(["tar", "-czf", path, "-C", dir, "."])
        if r.status != 0 { throw TestFailure("tar: \(r)") }
    }

    @Test func bundleDropStartsARollingDeploy() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libInstancesPlugin.so"])
            let pickup = try await PickupHarness.start(env, config: Self.config)
            let app = pickup.folder("instances") + "/shop"
            try FileManager.default.createDirectory(atPath: app, withIntermediateDirectories: true)
            let staging = try Files.makeTemp()
            defer { try? FileManager.default.removeItem(atPath: staging) }

            try await bundle(env, staging + "/shop-1.tar.gz", withServer: true)
            #expect(try await env.run(["mv", staging + "/shop-1.tar.gz", app + "/"]).status == 0)
            let good = try await pickup.waitFor("shop-1.tar.gz", timeout: .seconds(30))
            #expect(good[0].ok && good[0].target == "instances/shop", "\(good)")
            let list = try await pickup.client.call(
                "org.berth.Berth1", "/org/berth/Berth1/instances", "org.berth.Berth1.Instances", "List")
            #expect("\(list)".contains("shop") && "\(list)".contains("running"), "\(list)")

            try await bundle(env, staging + "/shop-2.tar.gz", withServer: false)
            #expect(try await env.run(["mv", staging + "/shop-2.tar.gz", app + "/"]).status == 0)
            let bad = try await pickup.waitFor("shop-2.tar.gz", timeout: .seconds(30))
            #expect(!bad[0].ok && bad[0].detail.contains("server"), "\(bad)")
            let rows = try await pickup.deployments()
            #expect(rows.first?[1] == "shop-2.tar.gz" && rows.first?[3] == "failed")
        }
    }
}
