import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// The `services` target against the real services plugin: a definition dropped in defines the service, a bad
/// one fails with the reason while the previous definition keeps running, and it survives a restart.
@Suite(.serialized) struct ServicesTargetTests {
    static let services = "/org/berth/Berth1/services"

    func state(_ pickup: PickupHarness, _ name: String, _ property: String) async throws -> DBusValue {
        try await pickup.client.getProperty(
            "org.berth.Berth1", BusPath.encode(Self.services, name), "org.berth.Berth1.Service", property)
    }

    @Test func definitionDeploysAndABadOneLeavesThePreviousRunning() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libServicesPlugin.so"])
            let pickup = try await PickupHarness.start(env)
            let folder = pickup.folder("services")
            try Files.write(folder + "/.web.yaml.tmp", "exec: [sleep, \"300\"]\n")
            #expect(rename(folder + "/.web.yaml.tmp", folder + "/web.yaml") == 0)
            let first = try await pickup.waitFor("web.yaml")
            #expect(first[0].ok && first[0].target == "services", "\(first)")

            _ = try await pickup.client.call(
                "org.berth.Berth1", Self.services, "org.berth.Berth1.Services", "Start", [.string("web")])
            try await waitUntil("web is active") { (try? await state(pickup, "web", "State"))?.string == "active" }
            let pid = try await state(pickup, "web", "MainPID")

            try Files.write(folder + "/web.yaml", "exec: [sleep, \"1\"]\nrestrat: always\n")
            let second = try await pickup.waitFor("web.yaml", count: 2)
            #expect(!second[1].ok && second[1].detail.contains("restrat"), "\(second[1])")
            #expect(try await state(pickup, "web", "State").string == "active")
            #expect(try await state(pickup, "web", "MainPID") == pid)

            // Restart with the file put back to the deployed content while the daemon was down: the rescan finds
            // it unchanged (same sha256 as the current deployment), so nothing deploys again; the service persists.
            try await pickup.stopDaemon()
            try Files.write(folder + "/web.yaml", "exec: [sleep, \"300\"]\n")
            try await pickup.startDaemon()
            try await pickup.barrier(in: pickup.folder("files"))
            #expect(pickup.outcomes(named: "web.yaml").count == 2, "unchanged definition deployed again after restart")
            #expect((try? await state(pickup, "web", "Name"))?.string == "web")

            // Undeploy removes the service.
            _ = try await pickup.call("Undeploy", [.string("web.yaml"), .string("services")])
            try await waitUntil("web is gone") { (try? await state(pickup, "web", "Name")) == nil }
        }
    }
}
