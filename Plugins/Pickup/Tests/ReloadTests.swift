import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// Folders from the config file follow a reload, live.
@Suite struct ReloadTests {
    @Test func reloadAddsAndRemovesConfigFolders() async throws {
        try await TestEnvironment.with { env in
            let a = try Files.makeTemp()
            let b = try Files.makeTemp()
            defer {
                try? FileManager.default.removeItem(atPath: a)
                try? FileManager.default.removeItem(atPath: b)
            }
            try Files.write(b + "/already.txt", "there before the reload")
            let pickup = try await PickupHarness.start(
                env, config: "pickup:\n  dirs:\n    a: {path: \(a), target: files}\n")
            try env.writeConfig("pickup:\n  dirs:\n    b: {path: \(b), target: files}\n")
            _ = try await pickup.client.call(
                "org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager", "Reload")
            let dirs = try await pickup.client.getProperty(
                "org.berth.Berth1", PickupHarness.path, PickupHarness.interface, "Directories")
            #expect("\(dirs)".contains(b) && !"\(dirs)".contains(a), "\(dirs)")
            try await pickup.waitFor("already.txt")
            try Files.write(b + "/new.txt", "n")
            try await pickup.waitFor("new.txt")

            // A typo in the section is refused by the strict reader, naming the key.
            try env.writeConfig("pickup:\n  dirs:\n    b: {path: \(b), target: files, recursiv: true}\n")
            await #expect(throws: DBusError.self) {
                _ = try await pickup.client.call(
                    "org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager", "Reload")
            }
        }
    }
}
