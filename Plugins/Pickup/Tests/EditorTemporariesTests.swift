import BerthKit
import BerthTestSupport
import Foundation
import Testing

@testable import PickupPlugin

/// Editors' saves deploy the saved file and nothing of what the editor wrote on the way (real inotify, a real
/// berthd); a folder's own `ignore` patterns pass over more.
@Suite(.serialized) struct EditorTemporariesTests {
    static func pause() { usleep(UInt32.random(in: 20_000...50_000)) }

    /// A JetBrains IDE's safe write, step by step with 20-50 ms between steps, then the temporaries of VS Code,
    /// Kate, gedit, emacs and vim: only the saved files deploy (each once), no temporary ever does.
    @Test func editorSavesDeployOnlyTheSavedFile() async throws {
        try await TestEnvironment.with { env in
            let pickup = try await PickupHarness.start(env)
            let files = pickup.folder("files")
            try Files.write(files + "/hello.py", "print('v1')\n")
            try await pickup.waitFor("hello.py")
            // JetBrains: write NAME___jb_tmp___, rename NAME to NAME___jb_old___, rename the temporary to NAME,
            // delete the old one.
            try Files.write(files + "/hello.py___jb_tmp___", "print('v2')\n")
            Self.pause()
            #expect(rename(files + "/hello.py", files + "/hello.py___jb_old___") == 0)
            Self.pause()
            #expect(rename(files + "/hello.py___jb_tmp___", files + "/hello.py") == 0)
            Self.pause()
            #expect(unlink(files + "/hello.py___jb_old___") == 0)
            try await pickup.waitFor("hello.py", count: 2)
            // VS Code's atomic save, Chromium's swap file.
            try Files.write(files + "/code.txt.vsctmp", "vs code")
            Self.pause()
            #expect(rename(files + "/code.txt.vsctmp", files + "/code.txt") == 0)
            try Files.write(files + "/page.html.crswap", "chromium")
            // Kate: QSaveFile's NAME.XXXXXX renamed over NAME, and its swap file.
            try Files.write(files + "/.kate.txt.kate-swp", "swap")
            try Files.write(files + "/kate.txt.aB3xZ9", "kate")
            Self.pause()
            #expect(rename(files + "/kate.txt.aB3xZ9", files + "/kate.txt") == 0)
            // gedit (GIO): .goutputstream-XXXXXX renamed over NAME, the backup NAME~.
            try Files.write(files + "/.goutputstream-Q1W2E3", "gedit")
            Self.pause()
            #expect(rename(files + "/.goutputstream-Q1W2E3", files + "/gedit.txt") == 0)
            try Files.write(files + "/gedit.txt~", "old")
            // emacs: the auto-save #NAME#, the backups NAME~ and NAME.~1~.
            try Files.write(files + "/#emacs.txt#", "autosave")
            try Files.write(files + "/emacs.txt", "emacs")
            try Files.write(files + "/emacs.txt.~1~", "backup")
            // vim: the swap file, the write test 4913 (5036 when 4913 is taken), the backup.
            try Files.write(files + "/.vim.txt.swp", "swap")
            try Files.write(files + "/4913", "")
            try Files.write(files + "/5036", "")
            try Files.write(files + "/vim.txt", "vim")
            try await pickup.barrier(in: files)
            let names = Set(pickup.outcomes.map(\.name)).filter { !$0.hasPrefix("zz-barrier-") }
            #expect(names == ["hello.py", "code.txt", "kate.txt", "gedit.txt", "emacs.txt", "vim.txt"], "\(names)")
            #expect(pickup.outcomes(named: "hello.py").count == 2)
            #expect(pickup.outcomes.allSatisfy { $0.ok }, "\(pickup.outcomes)")
            let published = try FileManager.default.contentsOfDirectory(atPath: pickup.stateDir + "/published")
            #expect(!published.contains { $0.contains("___jb_") }, "\(published)")
            #expect(try FileSystem.readText(pickup.stateDir + "/published/hello.py") == "print('v2')\n")
        }
    }

    @Test func editorTemporaryNames() {
        for name in [
            "a.py___jb_tmp___", "a.py___jb_old___", "a.py___jb_bak___", "a.txt.vsctmp", "a.txt.crswap",
            ".a.txt.kate-swp", "a.txt.Xy12ab", ".goutputstream-ABC123", "#a.txt#", ".#a.txt", "a.txt~", "a.txt.~1~",
            ".a.txt.swp", "a.swo", "4913", "5036", "a.save", "a.tmp",
        ] {
            #expect(NameRules.isIgnored(name), "\(name)")
        }
        for name in ["a.py", "web.yaml", "site.tar.gz", "report.backup", "4914", "archive.tar", "v1.2.3"] {
            #expect(!NameRules.isIgnored(name), "\(name)")
        }
        #expect(NameRules.isIgnored("x.bak", extra: ["*.bak"]) && !NameRules.isIgnored("x.bak"))
    }

    /// `ignore` patterns of a folder (AddDirectory option, `dirs:` key) pass over more names; they are kept with a
    /// run-time folder across a restart and exported with it.
    @Test func aFolderIgnoresItsOwnPatterns() async throws {
        try await TestEnvironment.with { env in
            let pickup = try await PickupHarness.start(env)
            let site = try Files.makeTemp()
            defer { try? FileManager.default.removeItem(atPath: site) }
            _ = try await pickup.call(
                "AddDirectory",
                [
                    .string("site"), .string(site), .string("files"),
                    .vardict([("ignore", .strings(["*.bak", "draft-*"]))]),
                ])
            try Files.write(site + "/page.bak", "backup")
            try Files.write(site + "/draft-1.html", "draft")
            try Files.write(site + "/page.html", "page")
            try await pickup.barrier(in: site)
            try await pickup.stopDaemon()
            try await pickup.startDaemon()
            try Files.write(site + "/other.bak", "backup")
            try await pickup.barrier(in: site)
            let names = Set(pickup.outcomes.map(\.name)).filter { !$0.hasPrefix("zz-barrier-") }
            #expect(names == ["page.html"], "\(names)")
            await #expect(throws: DBusError.self) {
                _ = try await pickup.call(
                    "AddDirectory",
                    [.string("bad"), .string(site), .string("files"), .vardict([("ignore", .string("*.bak"))])])
            }
        }
        let parsed = try PickupConfig.parse(
            try YAMLParser.parse("dirs:\n  d: {path: /srv, target: files, ignore: [\"*.bak\"]}\n", file: "t"))
        #expect(parsed.dirs.first?.ignore == ["*.bak"])
        let again = try PickupConfig.parse(PickupConfig.node(dirs: parsed.dirs))
        #expect(again.dirs == parsed.dirs)
    }
}
