import BerthKit
import Glibc
import Synchronization

/// The commit each git folder's clone is checked out at, by clone path: the `commit` of `Deployed` for a file
/// from that folder (empty for any other deployment). Read from any thread.
final class GitCommits: Sendable {
    private let table = Mutex<[String: String]>([:])

    func set(path: String, commit: String) { table.withLock { $0[path] = commit } }
    func remove(path: String) { table.withLock { _ = $0.removeValue(forKey: path) } }

    func commit(forSource source: String) -> String {
        table.withLock { table in
            table.first { source.hasPrefix($0.key + "/") }?.value ?? ""
        }
    }
}

/// The pickup folders fed by git (`GitSource`): each has a clone in the state folder that the folder watcher
/// watches like any folder. A sync fetches the branch and, when it moved, checks the fetched commit out (a
/// force-push included); git holds `index.lock` while it writes the work tree, so the watcher deploys the whole
/// change as one batch, each changed file once. A clone with local edits (changed, added or deleted files) is
/// never overwritten: the sync refuses and says so in `LastError`. A failed fetch (remote down, bad
/// credentials) is `LastError` too, and the next interval tries again. Syncs of one folder run one at a time.
actor GitFolders {
    struct Folder: Sendable {
        var source: GitSource
        var path: String
        var commit = ""
        var lastError = ""
        var loop: Task<Void, Never>?
        /// The sync running or queued last: the next one waits for it.
        var tail: Task<Void, Never>?
    }

    /// git runs as one-shot units of pickup's own supervisor, its last 200 lines of output kept.
    private let runner: CommandRunner
    private let logger: Logger
    let commits: GitCommits
    private var folders: [String: Folder] = [:]
    private var object: BusObject?

    init(runtimeDirectory: String, commits: GitCommits, logger: Logger) throws {
        runner = CommandRunner(
            supervisor: try Supervisor(runtimeDirectory: runtimeDirectory, logger: logger),
            outputFolder: runtimeDirectory, outputLines: 200)
        self.commits = commits
        self.logger = logger
    }

    static let property = BusProperty("GitFolders", "a(sssss)", initial: .structs("(sssss)", []))

    /// `Pull(s name) -> (u job_id, o job)`: fetch now and deploy what the new commit changed, as a job that fails
    /// with the folder's error.
    static func pullMethod(_ folders: GitFolders, context: PluginContext) -> BusMethod {
        .async("Pull", in: [BusArg("name", "s")], out: [BusArg("job_id", "u"), BusArg("job", "o")]) { call in
            let name = call.string(0)
            try await folders.check(name)
            return try await context.startJob("pull " + name) { job in
                job.log("fetching \(name)")
                let commit = try await folders.pull(name)
                job.log("pickup folder \"\(name)\" is at commit \(commit)")
            }.reply
        }
    }

    /// The source of every git folder, by name.
    func sources() -> [String: GitSource] { folders.mapValues(\.source) }

    func attach(_ object: BusObject) {
        self.object = object
        publish()
    }

    func check(_ name: String) throws {
        guard folders[name] != nil else {
            let known = folders.keys.sorted()
            throw BerthError.notFound(
                "pickup has no git folder \(BerthError.quote(name))"
                    + (known.isEmpty ? " (none is configured)" : " (git folders: \(known.joined(separator: ", ")))"))
        }
    }

    /// Takes the git folders of `config` (paths resolved): new ones get their clone folder (an empty repository
    /// with `origin`, so the watcher sees a work tree from the start), removed ones stop, changed ones follow
    /// their new URL or branch. Call before the watcher adds the folders; `startLoops` then fetches.
    func configure(_ config: PickupConfig) async {
        let wanted = Dictionary(
            config.dirs.compactMap { dir in config.git[dir.name].map { (dir.name, (dir.path, $0)) } },
            uniquingKeysWith: { a, _ in a })
        for (name, folder) in folders where wanted[name] == nil {
            folder.loop?.cancel()
            commits.remove(path: folder.path)
            folders[name] = nil
        }
        for (name, (path, source)) in wanted.sorted(by: { $0.key < $1.key }) {
            if var existing = folders[name] {
                guard existing.source != source else { continue }
                existing.loop?.cancel()
                existing.loop = nil
                existing.source = source
                folders[name] = existing
            } else {
                folders[name] = Folder(source: source, path: path)
            }
            do {
                try await prepare(name)
            } catch {
                setError(name, BerthError.wrapping(error).message)
            }
        }
        publish()
    }

    /// Starts the interval fetch of every folder that has none running.
    func startLoops() {
        for (name, folder) in folders where folder.loop == nil {
            let interval = folder.source.interval
            folders[name]?.loop = Task { [weak self] in
                while !Task.isCancelled {
                    _ = try? await self?.pull(name)
                    try? await Task.sleep(for: interval)
                }
            }
        }
    }

    func stop() async {
        // A git still running is stopped (its run's wait is cancelled, which stops the unit), not waited for.
        for folder in folders.values {
            folder.loop?.cancel()
            folder.tail?.cancel()
        }
        for folder in folders.values { await folder.tail?.value }
        folders = [:]
    }

    /// Fetches now and checks out what was fetched; waits for a sync already running first. Returns the commit the
    /// clone is at; throws the folder's error.
    func pull(_ name: String) async throws -> String {
        try check(name)
        let previous = folders[name]?.tail
        let run = Task {
            await previous?.value
            await self.sync(name)
        }
        folders[name]?.tail = run
        await run.value
        guard let folder = folders[name] else { throw BerthError.notFound("pickup git folder \"\(name)\" was removed") }
        if !folder.lastError.isEmpty { throw BerthError.failed(folder.lastError) }
        return folder.commit
    }

    // MARK: - git

    private func prepare(_ name: String) async throws {
        guard let folder = folders[name] else { return }
        if !FileSystem.exists(folder.path + "/.git") {
            try FileSystem.makeDirectories(folder.path, mode: 0o755)
            try await git(name, ["init", "-q", "-b", folder.source.branch], what: "git init")
            try await git(name, ["remote", "add", "origin", folder.source.url], what: "git remote add")
        } else {
            try await git(name, ["remote", "set-url", "origin", folder.source.url], what: "git remote set-url")
        }
        let head = try? await git(name, ["rev-parse", "--verify", "-q", "HEAD"], what: "git rev-parse")
        folders[name]?.commit = head ?? ""
        commits.set(path: folder.path, commit: head ?? "")
    }

    private func sync(_ name: String) async {
        guard let folder = folders[name] else { return }
        let branch = folder.source.branch
        let remoteRef = "refs/remotes/origin/" + branch
        do {
            do {
                try await git(
                    name, ["fetch", "-q", "--no-tags", "origin", "+refs/heads/\(branch):\(remoteRef)"],
                    what: "git fetch of \(folder.source.url) (branch \(branch))", timeout: .seconds(120))
            }
            let fetched = try await git(
                name, ["rev-parse", "--verify", "-q", remoteRef + "^{commit}"], what: "git rev-parse")
            if fetched == folders[name]?.commit {
                setError(name, "")
                return
            }
            // Local edits are never discarded: any change, addition or removal in the clone stops the update.
            let status = try await git(
                name, ["status", "--porcelain", "--untracked-files=all"], what: "git status")
            if !status.isEmpty {
                let files = status.split(separator: "\n").prefix(5).joined(separator: ", ")
                throw BerthError.failed(
                    "pickup folder \"\(name)\": the clone \(folder.path) has local edits (\(files)); not updating to "
                        + "\(fetched) of \(folder.source.url): commit, stash or remove them")
            }
            // The commit is known before the checkout writes the first file: its deployments carry it.
            commits.set(path: folder.path, commit: fetched)
            do {
                try await git(name, ["checkout", "-q", "-B", branch, remoteRef], what: "git checkout of \(fetched)")
            } catch {
                commits.set(path: folder.path, commit: folders[name]?.commit ?? "")
                throw error
            }
            folders[name]?.commit = fetched
            publish()
            logger.info("pickup folder \"\(name)\" moved to commit \(fetched) of \(folder.source.url) (\(branch))")
            setError(name, "")
        } catch {
            let message = BerthError.wrapping(error).message
            if folders[name]?.lastError != message { logger.warning("\(message)") }
            setError(name, message)
        }
    }

    /// Runs git in the folder's clone; its output (trimmed) on success, else a `BerthError` with git's last line.
    @discardableResult
    private func git(_ name: String, _ args: [String], what: String, timeout: Duration = .seconds(30)) async throws
        -> String
    {
        guard let folder = folders[name] else { throw BerthError.notFound("pickup git folder \"\(name)\" was removed") }
        let outcome = try await runner.run(
            "git-" + name, ["git", "-C", folder.path] + args,
            environment: ["GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/false", "LC_ALL": "C"], timeout: timeout)
        guard outcome.succeeded else {
            throw BerthError.failed("pickup folder \"\(name)\": \(what) failed: \(outcome.reason)")
        }
        return outcome.output.trimmingWhitespace
    }

    private func setError(_ name: String, _ message: String) {
        guard folders[name] != nil, folders[name]?.lastError != message else { return }
        folders[name]?.lastError = message
        publish()
    }

    private func publish() {
        let rows = folders.sorted { $0.key < $1.key }.map { name, folder -> [DBusValue] in
            [
                .string(name), .string(folder.source.url), .string(folder.source.branch), .string(folder.commit),
                .string(folder.lastError),
            ]
        }
        object?.set("GitFolders", .structs("(sssss)", rows))
    }
}

extension String {
    fileprivate var trimmingWhitespace: String {
        var slice = self[...]
        while let first = slice.first, first.isWhitespace { slice = slice.dropFirst() }
        while let last = slice.last, last.isWhitespace { slice = slice.dropLast() }
        return String(slice)
    }
}
