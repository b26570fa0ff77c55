import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// The D-Bus contract (introspection matches dbus/org.berth.Berth1.Pickup.xml) and berthctl pickup.
@Suite(.serialized) struct PickupBusTests {
    @Test func checkedInXMLMatchesLiveIntrospection() async throws {
        try await TestEnvironment.with { env in
            _ = try await PickupHarness.start(env)
            let (file, live) = try await IntrospectionXML.compare(
                env, path: PickupHarness.path, interface: PickupHarness.interface)
            #expect(
                file == live,
                "dbus/org.berth.Berth1.Pickup.xml differs from live introspection; regenerate with BERTH_UPDATE_DBUS_XML=1"
            )
        }
    }

    @Test func berthctlPickup() async throws {
        try await TestEnvironment.with { env in
            let pickup = try await PickupHarness.start(env)
            let source = try Files.makeTemp()
            defer { try? FileManager.default.removeItem(atPath: source) }

            let add = try await env.berthctl(["pickup", "add", "web", source, "--target", "files", "--markers"])
            #expect(add.status == 0, "\(add)")
            let dirs = try await env.berthctl(["pickup", "dirs"])
            #expect(
                dirs.stdout.contains("web") && dirs.stdout.contains(source) && dirs.stdout.contains("services"),
                "\(dirs)")
            let duplicate = try await env.berthctl(["pickup", "add", "web", source, "--target", "files"])
            #expect(duplicate.status != 0 && duplicate.stderr.contains("already has a folder"), "\(duplicate)")

            // deploy waits for the outcome and prints it; a failure exits non-zero with the reason.
            let outside = try Files.makeTemp()
            defer { try? FileManager.default.removeItem(atPath: outside) }
            try Files.write(outside + "/page.html", "v1")
            let deployed = try await env.berthctl(["pickup", "deploy", outside + "/page.html", "--target", "files"])
            #expect(deployed.status == 0 && deployed.stdout.contains("deployed page.html to files"), "\(deployed)")
            try Files.write(outside + "/page.html", "v2")
            #expect(
                try await env.berthctl(["pickup", "deploy", outside + "/page.html", "--target", "files"]).status == 0)
            try Files.write(outside + "/svc.yaml", "exec: [/bin/true]\n")
            let failed = try await env.berthctl(["pickup", "deploy", outside + "/svc.yaml", "--target", "services"])
            #expect(failed.status != 0 && failed.stderr.contains("services plugin is not active"), "\(failed)")

            let history = try await env.berthctl(["pickup", "history", "-n", "2"])
            #expect(
                history.status == 0 && history.stdout.contains("svc.yaml") && history.stdout.contains("failed"),
                "\(history)")
            #expect(history.stdout.split(separator: "\n").count == 3, "\(history)")
            let json = try await env.berthctl(["--json", "pickup", "history"])
            #expect(json.status == 0 && json.stdout.contains("\"status\""), "\(json)")

            // No --target: the one target page.html was deployed to (it used to default to services and fail).
            let rollback = try await env.berthctl(["pickup", "rollback", "page.html"])
            #expect(rollback.status == 0 && rollback.stdout.contains("rolled back page.html in files"), "\(rollback)")
            let never = try await env.berthctl(["pickup", "rollback", "nothing.html"])
            #expect(never.status == 1 && never.stderr.contains("\"nothing.html\" was never deployed"), "\(never)")
            #expect(try String(contentsOfFile: pickup.stateDir + "/published/page.html", encoding: .utf8) == "v1")

            let pause = try await env.berthctl(["pickup", "pause"])
            #expect(pause.status == 0 && pause.stdout.hasPrefix("pickup paused"), "\(pause)")
            let paused = try await pickup.client.getProperty(
                "org.berth.Berth1", PickupHarness.path, PickupHarness.interface, "Paused")
            #expect(paused == .bool(true))
            let resumed = try await env.berthctl(["pickup", "resume"])
            #expect(resumed.status == 0 && resumed.stdout.hasPrefix("pickup resumed"), "\(resumed)")
            let removed = try await env.berthctl(["pickup", "remove", "web"])
            #expect(
                removed.status == 0 && removed.stdout.contains("stopped watching the pickup folder \"web\""), "\(removed)")
            let missing = try await env.berthctl(["pickup", "remove", "web"])
            #expect(missing.status != 0 && missing.stderr.contains("no folder named"), "\(missing)")
        }
    }

    @Test func gdbusSeesTheSignals() async throws {
        try await TestEnvironment.with { env in
            let pickup = try await PickupHarness.start(env)
            let monitor = try ChildProcess.spawn(
                [
                    "gdbus", "monitor", "--address", env.bus.address, "--dest", "org.berth.Berth1", "--object-path",
                    PickupHarness.path,
                ],
                environment: env.environment, stdin: "/dev/null", stdout: env.root + "/monitor.out",
                stderr: env.root + "/monitor.err")
            defer { monitor.terminate() }
            try await waitUntil("gdbus monitor is listening") {
                ((try? String(contentsOfFile: env.root + "/monitor.out", encoding: .utf8)) ?? "").contains("Monitoring")
            }
            try Files.write(pickup.folder("files") + "/hello.txt", "hi")
            try await waitUntil("gdbus printed Deployed") {
                ((try? String(contentsOfFile: env.root + "/monitor.out", encoding: .utf8)) ?? "").contains(
                    "Pickup.Deployed")
            }
        }
    }
}
