import BerthKit
import Glibc

/// Walking folder trees: adding the watches of a folder (on the watcher's worker), and listing the files a rescan
/// compares with the log (on the engine's thread). Walks never follow symbolic links.
extension FolderWatcher {
    /// Watches the git directory of the work tree the folder lives in (if any) for git's index lock.
    func attachGitDirectory(_ directory: PickupDirectory, _ table: inout WatchTable) {
        guard let gitDirectory = GitWorkTree.gitDirectory(containing: directory.path),
            let wd = try? inotify.addWatch(gitDirectory)
        else { return }
        table.gitDirectories[directory.name] = gitDirectory
        if FileSystem.exists(gitDirectory + "/" + GitWorkTree.indexLock) { table.gitLocked.insert(gitDirectory) }
        table.add(.gitDirectory(directory: directory.name), wd: wd)
    }

    func attachParent(_ directory: PickupDirectory, _ table: inout WatchTable) {
        guard let wd = try? inotify.addWatch(FileSystem.directoryName(directory.path)) else { return }
        table.add(.parent(directory: directory.name), wd: wd)
    }

    /// Watches a folder (and, for a recursive directory, every subfolder but dot-folders); returns the files found
    /// in it, relative to the directory's root, so that files that arrived before the watch are not missed.
    func attachTree(_ directory: PickupDirectory, relative: String, _ table: inout WatchTable) -> [String] {
        let path = relative.isEmpty ? directory.path : directory.path + "/" + relative
        guard let wd = try? inotify.addWatch(path) else { return [] }
        table.add(.folder(directory: directory.name, relative: relative), wd: wd)
        var files: [String] = []
        for (child, isFolder) in Self.entries(of: directory.path, relative: relative) {
            if !isFolder {
                files.append(child)
            } else if directory.recursive {
                files += attachTree(directory, relative: child, &table)
            }
        }
        return files
    }

    /// Every file in a folder that deploys somewhere, as changes to compare with the log (a rescan).
    static func scan(_ directory: PickupDirectory) -> [PickupChange] {
        let now = SystemClock.wallUSec()
        return files(in: directory.path, relative: "", recursive: directory.recursive).compactMap { relative in
            guard directory.placement(forRelative: relative) != nil else { return nil }
            return PickupChange(
                directory: directory.name, path: directory.path + "/" + relative, relative: relative, kind: .changed,
                detectedUSec: now, fromRescan: true)
        }
    }

    /// Files under `path` (relative paths), descending into subfolders (not dot-folders) when `recursive`.
    static func files(in path: String, relative: String, recursive: Bool) -> [String] {
        var found: [String] = []
        for (child, isFolder) in entries(of: path, relative: relative) {
            if !isFolder {
                found.append(child)
            } else if recursive {
                found += files(in: path, relative: child, recursive: true)
            }
        }
        return found
    }

    /// The entries of folder `relative` under `root`, relative to `root`, each with whether it is a folder to
    /// descend into (a folder itself, not a link to one: `ln -s . self` would never end; not a dot-folder).
    private static func entries(of root: String, relative: String) -> [(child: String, isFolder: Bool)] {
        let folder = relative.isEmpty ? root : root + "/" + relative
        return FileSystem.list(folder).compactMap { name in
            let child = relative.isEmpty ? name : relative + "/" + name
            var info = stat()
            let isFolder = lstat(folder + "/" + name, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
            if isFolder && name.hasPrefix(".") { return nil }
            return (child, isFolder)
        }
    }
}
