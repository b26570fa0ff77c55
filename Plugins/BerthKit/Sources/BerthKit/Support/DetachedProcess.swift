import CBerthShim
import Glibc

/// Starting a program that outlives its starter (`berthctl up` starting berthd or a private dbus-daemon):
/// a new session, stdin from /dev/null, output appended to a log file, clean signal state.
public enum DetachedProcess {
    public static func spawn(_ argv: [String], environment: [String]? = nil, logPath: String?) throws -> pid_t {
        guard let path = argv.first else { throw BerthError.invalidArgument("nothing to start: empty argv") }
        let env = environment ?? currentEnvironment()
        var cArgv = argv.map { strdup($0) } + [nil]
        var cEnv = env.map { strdup($0) } + [nil]
        defer {
            for p in cArgv { free(p) }
            for p in cEnv { free(p) }
        }
        let pid = cberth_spawn_detached(path, &cArgv, &cEnv, logPath)
        if pid < 0 { throw BerthError.failed("cannot start \"\(path)\": \(systemErrorText(-pid))") }
        return pid
    }

    /// This process's environment as `NAME=value` strings.
    public static func currentEnvironment() -> [String] {
        var result: [String] = []
        var pointer = environ
        while let entry = pointer.pointee {
            result.append(String(cString: entry))
            pointer += 1
        }
        return result
    }

    /// Looks a program up in PATH (or returns it when it contains a slash).
    public static func findExecutable(_ name: String) -> String? {
        if name.contains("/") { return FileSystem.isExecutableFile(name) ? name : nil }
        let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") where FileSystem.isExecutableFile("\(dir)/\(name)") {
            return "\(dir)/\(name)"
        }
        return nil
    }
}
