import BerthKit

/// Switches an application's front end to an instance, atomically: the `current` link, then the front-end file
/// rendered from the template (written to a temp file and renamed), then the reload command.
struct FrontEnd: Sendable {
    let settings: InstancesSettings
    let store: InstanceStore
    let runner: CommandRunner

    func filePath(_ app: String) -> String {
        (settings.frontendFile ?? store.defaultFrontendFile("{{app}}")).replacingPlaceholders(["app": app])
    }

    func render(app: String, instance: String, port: Int) -> String {
        settings.template.replacingPlaceholders(["app": app, "instance": instance, "port": String(port)])
    }

    /// Points the front end of `app` at `instance`. Throws when the file cannot be written or the reload fails.
    func switchTo(app: String, instance: String, port: Int, log: @Sendable (String) -> Void) async throws {
        let path = filePath(app)
        try FileSystem.makeDirectories(FileSystem.directoryName(path))
        try FileSystem.writeAtomically(path, text: render(app: app, instance: instance, port: port))
        try store.setCurrent(app, instance)
        log("front end of \(app) written to \(path) (127.0.0.1:\(port))")
        try await reload(log: log)
    }

    func reload(log: @Sendable (String) -> Void) async throws {
        guard !settings.reload.isEmpty else { return }
        let outcome = try await runner.run("frontend-reload", settings.reload, timeout: .seconds(30))
        guard outcome.succeeded else {
            throw BerthError.failed(
                "the front-end reload \"\(settings.reload.joined(separator: " "))\" \(outcome.reason)")
        }
        log("front end reloaded (\(settings.reload.joined(separator: " ")))")
    }
}

extension String {
    /// `{{name}}` replaced by its value for every name given.
    func replacingPlaceholders(_ values: [String: String]) -> String {
        var result = ""
        var rest = Substring(self)
        while let open = rest.firstRange(of: "{{") {
            result += rest[..<open.lowerBound]
            let after = rest[open.upperBound...]
            guard let close = after.firstRange(of: "}}") else {
                result += rest[open.lowerBound...]
                return result
            }
            let name = String(after[..<close.lowerBound]).filter { $0 != " " }
            result += values[name] ?? "{{\(name)}}"
            rest = after[close.upperBound...]
        }
        return result + rest
    }
}
