import BerthKit

// Pickup's `service:NAME` target: code hot-deployed into a running service (Zato: "any Python module placed in
// the directory is picked up and deployed"). Files in `pickup/services/NAME/` (the built-in services folder's
// subfolders) or in a folder configured with `target: service:NAME` become a new release of that service's code
// through the services plugin (`ServiceCodeDeploying`), which restarts (or signals) the service and must see it
// ready, else brings the previous release back and fails the deployment with the reason.

extension PickupDirectory {
    /// The target of a file in a subfolder of a `services` folder: `service:NAME` for `NAME/file` (every file
    /// but the ignored ones is code), `service:NAME/SUB` for deeper files (refused with the reason when deployed).
    /// Nil for the folder's own files (service definitions) and for other targets.
    func serviceCodeTarget(forRelative relative: String) -> String? {
        guard target == "services" else { return nil }
        let parts = relative.split(separator: "/").map(String.init)
        guard parts.count >= 2, let file = parts.last, !NameRules.isIgnored(file, extra: ignore),
            !parts.dropLast().contains(where: { $0.hasPrefix(".") })
        else { return nil }
        return "service:" + parts.dropLast().joined(separator: "/")
    }
}

extension NameRules {
    /// `service:NAME` with a plain NAME.
    static func isServiceCodeTarget(_ target: String) -> Bool {
        target.hasPrefix("service:") && isPlainIdentifier(String(target.dropFirst("service:".count)))
    }
}

extension PickupEngine {
    /// Hands one code file to the services plugin as a new release of service NAME (`target` is `service:NAME`).
    func deployServiceCode(target: String, name: String, storedPath: String, source: String) async throws {
        let service = String(target.dropFirst("service:".count))
        guard NameRules.isPlainIdentifier(service) else {
            let top = service.split(separator: "/").first.map(String.init) ?? service
            throw BerthError.invalidArgument(
                "pickup does not deploy \"\(name)\" from \"services/\(service)/\": a service's code folder takes files, not subfolders; put it in \"services/\(top)/\""
            )
        }
        guard let services = targets.peer("services") as? any ServiceCodeDeploying else {
            throw BerthError.notSupported(
                "pickup cannot deploy \"\(name)\" into service \"\(service)\": the services plugin is not active")
        }
        _ = try await services.deployServiceCode(
            service: service, fileName: name, contentPath: storedPath, source: source)
    }
}
