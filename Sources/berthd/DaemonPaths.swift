import BerthKit
import Glibc

/// Where berthd keeps its config, state and runtime files, by mode, with the command line's overrides.
struct DaemonPaths: Sendable, Equatable {
    var configFile: String
    /// `conf.d` beside the config file: every `*.yaml` there is merged over it, in name order.
    var configDropIns: String
    var stateDir: String
    var runtimeDir: String
    var lockFile: String { runtimeDir + "/berthd.lock" }
    /// The state folder's own lock: two daemons must never share a state folder, whatever their runtime folders.
    var stateLockFile: String { stateDir + "/berthd.lock" }

    static func resolve(_ options: DaemonOptions, environment: (String) -> String? = env) throws -> DaemonPaths {
        let configFile: String
        let stateDir: String
        let runtimeDir: String
        switch options.mode {
        case .system:
            configFile = options.configFile ?? "/etc/berth/berth.yaml"
            stateDir = options.stateDir ?? "/var/lib/berth"
            runtimeDir = options.runtimeDir ?? "/run/berth"
        case .session:
            let home = environment("HOME") ?? ""
            func xdg(_ name: String, _ fallback: String) throws -> String {
                if let value = environment(name), value.hasPrefix("/") { return value }
                guard !home.isEmpty else {
                    throw BerthError.invalidConfig("neither \(name) nor HOME is set: cannot find the \(fallback) folder")
                }
                return home + "/" + fallback
            }
            configFile = try options.configFile ?? (xdg("XDG_CONFIG_HOME", ".config") + "/berth/berth.yaml")
            stateDir = try options.stateDir ?? (xdg("XDG_STATE_HOME", ".local/state") + "/berth")
            if let dir = options.runtimeDir {
                runtimeDir = dir
            } else if let dir = environment("XDG_RUNTIME_DIR"), dir.hasPrefix("/") {
                runtimeDir = dir + "/berth"
            } else {
                throw BerthError.invalidConfig(
                    "XDG_RUNTIME_DIR is not set, so berthd has no runtime folder for its lock: log in through a "
                        + "session (or run `loginctl enable-linger`), or pass --runtime-dir")
            }
        }
        let dir = FileSystem.absolute(configFile).split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        return DaemonPaths(configFile: FileSystem.absolute(configFile), configDropIns: dir + "/conf.d", stateDir: FileSystem.absolute(stateDir),
            runtimeDir: FileSystem.absolute(runtimeDir))
    }

    private static func env(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
}
