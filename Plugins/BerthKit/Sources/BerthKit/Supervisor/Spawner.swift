import CBerthShim
import Glibc

/// Turns a `ProcessSpec` into a running child through `cberth_spawn` (fork + async-signal-safe setup + execve,
/// in C): checks first what can be checked in the parent, so that a typo is a sentence and not an exit status.
enum Spawner {
    /// The executable `argv[0]` names: a path (relative ones against the working folder), or a name in `PATH`.
    static func resolveExecutable(_ spec: ProcessSpec, environment: [String: String]) throws -> String {
        let prefix = "\(spec.subject) failed to start"
        guard let name = spec.argv.first, !name.isEmpty else { throw BerthError.invalidArgument("\(prefix): exec is empty") }
        if let folder = spec.workingDirectory, !isDirectory(folder) {
            throw BerthError.failed("\(prefix): the working folder \"\(folder)\" does not exist")
        }
        if name.contains("/") {
            let path = name.hasPrefix("/") || spec.workingDirectory == nil ? name : spec.workingDirectory! + "/" + name
            try checkExecutable(path, shownAs: name, prefix: prefix)
            return path
        }
        let search = environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for folder in search.split(separator: ":") where !folder.isEmpty {
            let candidate = "\(folder)/\(name)"
            if access(candidate, X_OK) == 0 && !isDirectory(candidate) { return candidate }
        }
        throw BerthError.failed("\(prefix): \"\(name)\" was not found in PATH (\(search))")
    }

    /// The child's environment: the daemon's (when inherited) overlaid with the spec's and then `extra`.
    static func environment(_ spec: ProcessSpec, extra: [String: String]) -> [String: String] {
        var result: [String: String] = [:]
        if spec.inheritEnvironment {
            var cursor = environ
            while let entry = cursor.pointee {
                let text = String(cString: entry)
                if let equals = text.firstIndex(of: "=") {
                    result[String(text[..<equals])] = String(text[text.index(after: equals)...])
                }
                cursor += 1
            }
            result.removeValue(forKey: "NOTIFY_SOCKET")  // the daemon's own, from its service manager
            // The daemon's cgroup delegation (Supervisor+Cgroup) is not the child's.
            result.removeValue(forKey: "BERTH_CGROUP_DELEGATED")
            result.removeValue(forKey: "BERTH_CGROUP")
        }
        result.merge(spec.environment) { $1 }
        result.merge(extra) { $1 }
        return result
    }

    /// Spawns; returns the pid (also the pgid). `output` becomes stdout and stderr, stdin is /dev/null.
    static func spawn(
        _ spec: ProcessSpec, path: String, environment: [String: String], output: Int32, cgroupProcsFD: Int32 = -1
    ) throws -> Int32 {
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        guard null >= 0 else { throw BerthError.failed("cannot open /dev/null: \(systemErrorText(errno))") }
        defer { close(null) }
        let argv = CStringArray(spec.argv)
        let envp = CStringArray(environment.map { "\($0.key)=\($0.value)" }.sorted())
        defer {
            argv.free()
            envp.free()
        }
        var pid: pid_t = 0
        var step: Int32 = 0
        let code = path.withCString { cPath in
            withOptionalCString(spec.workingDirectory) { cwd in
                var request = cberth_spawn_request(
                    path: cPath, argv: argv.pointer, envp: envp.pointer, cwd: cwd, stdin_fd: null,
                    stdout_fd: output >= 0 ? output : null, stderr_fd: output >= 0 ? output : null,
                    pdeathsig: SIGKILL, cgroup_procs_fd: cgroupProcsFD)
                return cberth_spawn(&request, &pid, &step)
            }
        }
        guard code != 0 else { return pid }
        let prefix = "\(spec.subject) failed to start"
        let reason = systemErrorText(code)
        switch Int(step) {
        case Int(CBERTH_SPAWN_STEP_CHDIR):
            throw BerthError.failed("\(prefix): cannot enter the working folder \"\(spec.workingDirectory ?? "")\": \(reason)")
        case Int(CBERTH_SPAWN_STEP_EXEC):
            throw BerthError.failed("\(prefix): \"\(spec.argv.first ?? path)\" cannot be executed: \(reason)")
        default:
            throw BerthError.failed("\(prefix): \(reason)")
        }
    }

    private static func checkExecutable(_ path: String, shownAs name: String, prefix: String) throws {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw BerthError.failed("\(prefix): \"\(name)\" does not exist")
        }
        guard (info.st_mode & S_IFMT) != S_IFDIR, access(path, X_OK) == 0 else {
            throw BerthError.failed("\(prefix): \"\(name)\" is not executable")
        }
    }

    private static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    private static func withOptionalCString<R>(_ text: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
        guard let text else { return body(nil) }
        return text.withCString { body($0) }
    }
}

/// A NULL-terminated `char *[]` for argv and envp, freed explicitly.
private struct CStringArray {
    let pointer: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>

    init(_ strings: [String]) {
        pointer = .allocate(capacity: strings.count + 1)
        for (index, string) in strings.enumerated() { pointer[index] = strdup(string) }
        pointer[strings.count] = nil
    }

    func free() {
        var index = 0
        while let entry = pointer[index] {
            Glibc.free(entry)
            index += 1
        }
        pointer.deallocate()
    }
}
