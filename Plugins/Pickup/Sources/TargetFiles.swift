import BerthKit

/// Which files each target can take: the one place that says so. A file directly in a target's folder that its
/// target cannot take (`hello.py` in the services folder) is a failed deployment with the reason this gives,
/// never silence; the folder's own `patterns` still choose what it deploys. A target that takes new kinds of
/// files (a service's code from a subfolder, say) extends `unsupportedFileReason`.
enum TargetFiles {
    /// nil when `target` can take a file named `file`; otherwise why it cannot, as a sentence naming both.
    static func unsupportedFileReason(_ file: String, target: String) -> String? {
        let quoted = BerthError.quote(file)
        switch target {
        case "services":
            guard !hasSuffix(file, [".yaml", ".yml"]) else { return nil }
            return "pickup cannot deploy \(quoted) to services: the services folder takes service definitions, "
                + "*.yaml or *.yml files named after the service"
        case "config":
            guard !hasSuffix(file, [".yaml", ".yml", ".json"]) else { return nil }
            return "pickup cannot deploy \(quoted) to config: the config folder takes config files, *.yaml, *.yml "
                + "or *.json"
        case "files":
            return nil
        default:
            guard target.hasPrefix("instances/"), !hasSuffix(file, [".tar.gz", ".tgz", ".tar"]) else { return nil }
            return "pickup cannot deploy \(quoted) to \(target): an application's folder takes bundles, *.tar.gz, "
                + "*.tgz or *.tar files with an executable server at their root"
        }
    }

    private static func hasSuffix(_ file: String, _ suffixes: [String]) -> Bool {
        suffixes.contains { file.hasSuffix($0) && file.utf8.count > $0.utf8.count }
    }
}
