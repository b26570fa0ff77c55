import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// ExportConfig writes pickup's folders (config file and AddDirectory, not the built-in ones); ImportConfig adds
/// and replaces run-time folders, refuses to change config-file ones or file-only keys, and changes nothing then.
@Suite struct PickupConfigAsCodeTests {
    @Test func exportImportAndReplaceFolders() async throws {
        let root = try Files.makeTemp()
        defer { try? FileManager.default.removeItem(atPath: root) }
        for folder in ["fromfile", "extra", "fresh"] {
            try FileManager.default.createDirectory(atPath: root + "/" + folder, withIntermediateDirectories: true)
        }
        try await TestEnvironment.with { env in
            let pickup = try await PickupHarness.start(
                env, config: "pickup:\n  dirs:\n    fromfile: {path: \(root)/fromfile, target: files}\n")
            _ = try await pickup.call(
                "AddDirectory",
                [.string("extra"), .string(root + "/extra"), .string("files"), .vardict([("markers", .bool(true))])])

            let exported = try await env.berthctl(["config", "export"])
            #expect(exported.status == 0, "\(exported)")
            #expect(exported.stdout.contains("    extra:\n") && exported.stdout.contains("    fromfile:\n"), "\(exported)")
            #expect(exported.stdout.contains("markers: true"), "\(exported)")
            for builtin in ["services", "config", "files", "instances"] {
                #expect(!exported.stdout.contains("    \(builtin):\n"), "\(builtin) exported: \(exported)")
            }

            // The export imported again changes nothing.
            let file = env.root + "/pickup.yaml"
            try FileSystem.writeAtomically(file, text: exported.stdout)
            let same = try await env.berthctl(["config", "import", file, "--json"])
            #expect(same.status == 0 && !same.stdout.contains("create") && !same.stdout.contains("update"), "\(same)")

            // A new folder, and `extra` without markers; a dry run first.
            try FileSystem.writeAtomically(
                file,
                text: "pickup:\n  dirs:\n    fresh: {path: \(root)/fresh, target: files, patterns: ['*.txt']}\n"
                    + "    extra: {path: \(root)/extra, target: files}\n")
            let dry = try await env.busctl([
                "call", "org.berth.Berth1", "/org/berth/Berth1", "org.berth.Berth1.Manager", "ImportConfig", "sbb", file,
                "false", "true",
            ])
            #expect(
                dry.stdout
                    == "a(sss) 2 \"pickup-folder\" \"fresh\" \"create\" \"pickup-folder\" \"extra\" \"update\"\n",
                "\(dry)")
            #expect(try await folderNames(env) == ["config", "extra", "files", "fromfile", "instances", "services"])
            let applied = try await env.berthctl(["config", "import", file])
            #expect(applied.status == 0, "\(applied)")
            #expect(try await folderNames(env).contains("fresh"))
            try Files.write(root + "/fresh/a.txt", "a")
            try await pickup.waitFor("a.txt")
            try Files.write(root + "/extra/b.txt", "b")
            try await pickup.waitFor("b.txt")
            try await pickup.barrier(in: root + "/extra")
            #expect(!FileManager.default.fileExists(atPath: root + "/extra/b.txt.deployed"), "markers are off now")

            // Refused, and nothing changes: a file-only key, a changed config-file folder, a missing path.
            for (text, error) in [
                ("pickup:\n  keep_versions: 3\n", "pickup.keep_versions is set in the config file"),
                ("pickup:\n  dirs:\n    fromfile: {path: \(root)/fromfile, target: services}\n",
                 "\"fromfile\" is set in the config file"),
                ("pickup:\n  dirs:\n    gone: {path: \(root)/nothing-here, target: files}\n",
                 "\"\(root)/nothing-here\" is not an existing folder"),
            ] {
                try FileSystem.writeAtomically(file, text: text)
                let refused = try await env.berthctl(["config", "import", file, "--replace"])
                #expect(refused.status != 0 && refused.stderr.contains(error), "\(refused)")
            }
            #expect(try await folderNames(env).contains("fresh"))

            // replace: run-time folders not in the file go; the config file's folder stays.
            try FileSystem.writeAtomically(file, text: "pickup:\n  dirs:\n    fresh: {path: \(root)/fresh, target: files, patterns: ['*.txt']}\n")
            let replaced = try await env.berthctl(["config", "import", file, "--replace", "--json"])
            #expect(replaced.stdout.contains("{\"kind\":\"pickup-folder\",\"name\":\"extra\",\"action\":\"delete\"}"), "\(replaced)")
            #expect(try await folderNames(env) == ["config", "files", "fresh", "fromfile", "instances", "services"])
        }
    }

    func folderNames(_ env: TestEnvironment) async throws -> [String] {
        let client = try env.connect()
        defer { client.close() }
        let value = try await client.getProperty(
            "org.berth.Berth1", PickupHarness.path, PickupHarness.interface, "Directories")
        return (value.items ?? []).compactMap { $0.items?.first?.string }.sorted()
    }
}
