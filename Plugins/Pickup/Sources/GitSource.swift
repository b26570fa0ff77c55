import BerthKit
import Glibc

/// A pickup folder fed by git (`dirs: NAME: {git: {url, branch, interval}, target: ...}`): berth keeps a clone of
/// the branch in its state folder (`git/NAME`) as the folder's path, fetches on the interval and on `Pull`, and
/// moves the clone to the fetched commit; the folder watcher then deploys what the checkout changed as one batch
/// (git holds `index.lock` while it writes, see `GitWorkTree`).
struct GitSource: Sendable, Equatable {
    /// Any URL git accepts: ssh, https, file, a path.
    var url: String
    var branch: String
    var interval: Duration

    static let defaultBranch = "main"
    static let defaultInterval: Duration = .seconds(60)

    /// The `git:` mapping of a folder, or nil when it has none.
    static func parse(_ dir: ConfigReader) throws -> GitSource? {
        guard let git = try dir.reader("git") else { return nil }
        let url = try git.required("url", git.nonEmptyString)
        guard !url.hasPrefix("-"), !url.utf8.contains(0) else {
            throw git.error("url", "a git URL cannot start with \"-\"")
        }
        let branch = try git.nonEmptyString("branch") ?? defaultBranch
        guard checkBranch(branch) else {
            throw git.error(
                "branch", "\"\(branch)\" is not a branch name git accepts (no leading -, spaces, .., ~^:?*[\\)")
        }
        let interval = try git.duration("interval") ?? defaultInterval
        guard interval >= .milliseconds(100), interval <= .seconds(86400) else {
            throw git.error("interval", "must be 100ms to 24h, got \(interval)")
        }
        try git.finish()
        return GitSource(url: url, branch: branch, interval: interval)
    }

    static func checkBranch(_ name: String) -> Bool {
        !name.isEmpty && !name.hasPrefix("-") && !name.hasPrefix("/") && !name.hasSuffix("/")
            && !name.hasSuffix(".lock")
            && !name.contains("..") && !name.contains("@{") && name.utf8.count <= 255
            && !name.contains { " ~^:?*[\\\u{7f}".contains($0) || ($0.asciiValue ?? 32) < 32 }
    }

    /// Where the clone of folder `name` lives in pickup's state folder.
    static func clonePath(stateDirectory: String, name: String) -> String { stateDirectory + "/git/" + name }

    /// The path a git folder has until the plugin knows its state folder (`PickupConfig.resolvingGit`).
    static func unresolvedPath(_ name: String) -> String { "/nonexistent/berth-pickup-git/" + name }
}

extension PickupConfig {
    /// The config with every git folder's path set to its clone in `stateDirectory`.
    func resolvingGit(stateDirectory: String) -> PickupConfig {
        var copy = self
        copy.dirs = dirs.map { dir in
            guard git[dir.name] != nil else { return dir }
            var resolved = dir
            resolved.path = GitSource.clonePath(stateDirectory: stateDirectory, name: dir.name)
            return resolved
        }
        return copy
    }
}

extension GitSource {
    /// The `git:` mapping as the config writes it (ExportConfig).
    var node: ConfigNode {
        let ms = interval.components.seconds * 1000 + interval.components.attoseconds / 1_000_000_000_000_000
        let text = ms % 1000 == 0 ? "\(ms / 1000)s" : "\(ms)ms"
        return .map([("url", .string(url)), ("branch", .string(branch)), ("interval", .plain(text))])
    }

    /// A `pickup:` export (`PickupConfig.node`) with each git folder's `path`, its clone, given as its `git:`.
    static func exporting(_ section: ConfigNode, _ sources: [String: GitSource]) -> ConfigNode {
        guard !sources.isEmpty, case .mapping(let top, let mark) = section else { return section }
        return .mapping(
            top.map { entry in
                guard entry.key == "dirs", case .mapping(let dirs, let dirsMark) = entry.value else { return entry }
                var copy = entry
                copy.value = .mapping(
                    dirs.map { dir in
                        guard let source = sources[dir.key], case .mapping(let keys, let dirMark) = dir.value else {
                            return dir
                        }
                        var replaced = dir
                        replaced.value = .mapping(
                            keys.map { key in
                                guard key.key == "path" else { return key }
                                return ConfigEntry(key: "git", keyMark: key.keyMark, value: source.node)
                            }, dirMark)
                        return replaced
                    }, dirsMark)
                return copy
            }, mark)
    }
}
