import ArgumentParser
import BerthKit
import Glibc

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Check, import and export configuration (config as code).",
        subcommands: [Check.self, Import.self, Export.self])

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a berth.yaml (core keys, unknown keys, every plugin's section) without applying it.",
            discussion: "Runs `berthd --check-config` on the file, with the plugins berthd would load.")
        @OptionGroup var bus: BusOptions
        @Argument(help: "The config file.") var file: String
        @Option(name: .customLong("plugin-dir"), help: "Check plugin sections against the plugins in this folder (repeatable).")
        var pluginDirs: [String] = []

        func run() async throws {
            try await CLI.run(bus) {
                guard FileSystem.exists(file) else { throw CLIError("config file \"\(file)\" does not exist") }
                var berthd = DetachedProcess.findExecutable("berthd")
                if let exe = FileSystem.executablePath(), FileSystem.isExecutableFile(FileSystem.directoryName(exe) + "/berthd") {
                    berthd = FileSystem.directoryName(exe) + "/berthd"
                }
                guard let berthd else { throw CLIError("cannot find berthd beside berthctl or in PATH") }
                var argv = [berthd, "--check-config", "--config", file]
                if bus.system { argv.append("--system") }
                for dir in pluginDirs { argv += ["--plugin-dir", dir] }
                let status = try Subprocess.run(argv)
                if status != 0 { throw ExitCode(status) }
            }
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import plugin sections from a YAML file: all or nothing.",
            discussion: "Every item is checked before anything changes; --dry-run shows what would change.")
        @OptionGroup var bus: BusOptions
        @Argument(help: "The YAML file: a mapping of plugin id to section.") var file: String
        @Flag(name: .long, help: "Remove items the file does not list.") var replace = false
        @Flag(name: .customLong("dry-run"), help: "Only report what would change.") var dryRun = false

        func run() async throws {
            try await CLI.run(bus) {
                let path = FileSystem.absolute(file)
                let reply = try await BusTarget.resolve(bus).connect().manager(
                    "ImportConfig", [.string(path), .bool(replace), .bool(dryRun)], timeout: .seconds(120))
                let rows = (reply.first?.items ?? []).map { ($0.items ?? []).map { $0.string ?? "" } }
                if bus.json { return Output.json(["kind", "name", "action"], rows.map { $0.map(JSON.string) }) }
                Output.table(["KIND", "NAME", dryRun ? "WOULD" : "ACTION"], rows, empty: "nothing to change")
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print every plugin's current items as YAML.")
        @OptionGroup var bus: BusOptions

        func run() async throws {
            try await CLI.run(bus) {
                let reply = try await BusTarget.resolve(bus).connect().manager("ExportConfig")
                print(reply.first?.string ?? "", terminator: "")
            }
        }
    }
}

/// Running a helper program in the foreground (posix_spawn + waitpid), output passed through.
enum Subprocess {
    static func run(_ argv: [String]) throws -> Int32 {
        var cArgv = argv.map { strdup($0) } + [nil]
        defer { for p in cArgv { free(p) } }
        var pid: pid_t = 0
        let r = posix_spawn(&pid, argv[0], nil, nil, &cArgv, environ)
        if r != 0 { throw CLIError("cannot run \(argv[0]): \(systemErrorText(r))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}
