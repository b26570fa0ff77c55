import BerthKit
import Synchronization

// The pickup plugin (Zato hot-deployment): folders watched with inotify deploy what lands in them to services,
// config, files or instances/<app>; see README.md.

// The id-suffixed symbol names (see berthd's PluginLoader) keep this library linkable beside other plugins in the
// one test binary.
final class PickupPlugin: BerthPlugin {
    let id = "pickup"
    let version = "1.0.0"
    /// services and instances are targets: they start first when present (and stop after pickup).
    let dependencies = ["services", "instances"]
    let service = Mutex<PickupService?>(nil)
    let git = Mutex<(folders: GitFolders, stateDirectory: String)?>(nil)

    func validate(config: ConfigNode?) throws { _ = try PickupConfig.parse(config) }

    func start(context: PluginContext) async throws {
        let config = try PickupConfig.parse(context.config).resolvingGit(stateDirectory: context.stateDirectory)
        let targets = DeployTargets(
            peer: { context.peer($0) },
            importConfig: { path in _ = try await context.importConfig(path: path, replace: false, dryRun: false) })
        let service = try PickupService(
            stateDirectory: context.stateDirectory, config: config, targets: targets, logger: context.logger)
        // Folders fed by git (GitFolders.swift): their clones exist before the watcher adds them.
        let git = try GitFolders(runtimeDirectory: context.runtimeDirectory, commits: service.gitCommits, logger: context.logger)
        await git.configure(config)
        var interface = PickupInterface.make(service, logger: context.logger)
        interface.methods.append(GitFolders.pullMethod(git, context: context))
        interface.properties.append(GitFolders.property)
        let object = try await context.export(path: context.objectRoot, interfaces: [interface])
        await git.attach(object)
        await service.attach(object)
        try await service.start(config: config)
        await git.startLoops()
        self.git.withLock { $0 = (git, context.stateDirectory) }
        self.service.withLock { $0 = service }
        context.logger.info(
            "pickup watches \(service.watcher.directories.count) folders under \(context.stateDirectory)")
    }

    func reload(config: ConfigNode?) async throws {
        var parsed = try PickupConfig.parse(config)
        if let (folders, stateDirectory) = git.withLock({ $0 }) {
            parsed = parsed.resolvingGit(stateDirectory: stateDirectory)
            await folders.configure(parsed)
            await service.withLock { $0 }?.reload(parsed)
            await folders.startLoops()
        } else {
            await service.withLock { $0 }?.reload(parsed)
        }
    }

    func stop() async {
        let running = service.withLock { s -> PickupService? in
            defer { s = nil }
            return s
        }
        await git.withLock { g -> GitFolders? in
            defer { g = nil }
            return g?.folders
        }?.stop()
        await running?.stop()
    }
}

// MARK: - Import/export (kind "pickup-folder")

extension PickupPlugin {
    private func running() throws -> PickupService {
        guard let service = service.withLock({ $0 }) else {
            throw BerthError(.pluginFailed, "the pickup plugin is not running")
        }
        return service
    }

    /// Every folder but the built-in ones: from the config file and added with AddDirectory.
    func exportConfig() async -> ConfigNode? {
        guard let service = try? running() else { return nil }
        let folders = service.watcher.directories.filter { $0.origin != .builtin }.sorted { $0.name < $1.name }
        let sources = await git.withLock { $0 }?.folders.sources() ?? [:]
        return folders.isEmpty ? nil : GitSource.exporting(PickupConfig.node(dirs: folders), sources)
    }

    /// Imported folders are added as with AddDirectory (kept in the database); a changed one is replaced. A folder
    /// from the config file can only be imported unchanged. With `replace`, folders added at run time and not in the
    /// file are removed.
    func planImport(_ section: ConfigNode, replace: Bool) async throws -> [ConfigChange] {
        try plan(section, replace: replace, try running(), git: await gitSources()).changes
    }

    func applyImport(_ section: ConfigNode, replace: Bool) async throws -> [ConfigChange] {
        let service = try running()
        let (incoming, changes) = try plan(section, replace: replace, service, git: await gitSources())
        for change in changes where change.action != .unchanged {
            if change.action != .create {
                try await service.engine.deleteSavedDirectory(change.name)
                await service.remove(change.name)
            }
            guard change.action != .delete, var folder = incoming.first(where: { $0.name == change.name }) else {
                continue
            }
            folder.origin = .runtime
            try await service.addRuntime(folder)
        }
        return changes
    }

    private func gitSources() async -> [String: GitSource] { await git.withLock { $0 }?.folders.sources() ?? [:] }

    private func plan(_ section: ConfigNode, replace: Bool, _ service: PickupService, git sources: [String: GitSource]) throws
        -> (folders: [PickupDirectory], changes: [ConfigChange])
    {
        if case .mapping(let entries, _) = section,
            let key = entries.first(where: { PickupConfig.fileOnlyKeys.contains($0.key) })
        {
            throw BerthError.invalidConfig(
                "\(key.keyMark): pickup.\(key.key) is set in the config file; an import only adds folders (dirs)")
        }
        var parsed = try PickupConfig.parse(section)
        if let stateDirectory = git.withLock({ $0 })?.stateDirectory { parsed = parsed.resolvingGit(stateDirectory: stateDirectory) }
        let incoming = parsed.dirs
        let current = Dictionary(service.watcher.directories.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        // A git folder has its clone and fetch loop from the config file: an import can only repeat it unchanged.
        for folder in incoming where parsed.git[folder.name] != nil {
            var compared = folder
            compared.origin = current[folder.name]?.origin ?? .config
            guard current[folder.name] == compared, sources[folder.name] == parsed.git[folder.name] else {
                throw BerthError.notSupported(
                    "pickup folder \"\(folder.name)\" is fed by git; git folders are set in the config file")
            }
        }
        var changes: [ConfigChange] = []
        for folder in incoming {
            guard FileSystem.isDirectory(folder.path) else {
                throw BerthError.notFound(
                    "pickup folder \"\(folder.name)\": \"\(folder.path)\" is not an existing folder")
            }
            var action = ConfigChange.Action.create
            if let existing = current[folder.name] {
                var compared = folder
                compared.origin = existing.origin
                action = compared == existing ? .unchanged : .update
                if action == .update && existing.origin == .config {
                    throw BerthError.notSupported(
                        "pickup folder \"\(folder.name)\" is set in the config file; change it there and reload")
                }
            }
            changes.append(ConfigChange(kind: "pickup-folder", name: folder.name, action: action))
        }
        if replace {
            let names = Set(incoming.map(\.name))
            changes += current.values.filter { $0.origin == .runtime && !names.contains($0.name) }.map(\.name).sorted()
                .map { ConfigChange(kind: "pickup-folder", name: $0, action: .delete) }
        }
        return (incoming, changes)
    }
}

/// The plugin object for the entry symbols (Plugins/Pickup/Entry).
package func makePickupPlugin() -> any BerthPlugin { PickupPlugin() }
