/// How plugins cooperate without linking each other: a plugin conforms to one of these protocols and another
/// finds it through `PluginContext.peer(id)` and a cast. The protocols live here, in BerthKit, so that host and
/// every plugin share one copy of them.

/// The services plugin: pickup's `services` target defines or updates a service from a YAML spec, as `Define` would.
public protocol ServiceDefining: Sendable {
    /// Defines (or replaces) service `name` from `specYAML`; `source` names where it came from, for messages.
    /// Throws `InvalidConfig`/`InvalidArgument` and leaves the previous definition running when the spec is bad.
    func defineService(name: String, specYAML: String, source: String) async throws
    /// Removes service `name` (stopping it first). `NotFound` when it does not exist.
    func removeService(name: String) async throws
}

/// The instances plugin: pickup's `instances/<app>` target hands a bundle to a rolling deploy.
public protocol InstanceDeploying: Sendable {
    /// Starts a rolling deploy of `application` from `source` (a folder or a .tar/.tar.gz with `server` at its
    /// root) and returns its job at once; the job's result is the deploy's.
    func deployBundle(application: String, source: String, options: [String: DBusValue]) async throws -> Job
}

/// The services plugin: pickup's `service:NAME` target (folders `pickup/services/NAME/`) deploys code into a
/// service's code folder.
public protocol ServiceCodeDeploying: Sendable {
    /// Makes ONE new release of service `service`'s code: the current release's files plus every file of `files`
    /// (a name and the path of its content; a name given twice: the last wins), switched in atomically
    /// (`releases/<id>/` and the `current` link). A running service is then restarted (or sent its
    /// `reload_signal`) once and must become ready; if it does not, the previous release comes back and this throws
    /// the reason. Returns the new release's id. Pickup hands over the files of one batch together.
    func deployServiceCode(service: String, files: [(name: String, contentPath: String)], source: String)
        async throws -> String
}
