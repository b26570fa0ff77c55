import BerthKit
import Glibc

/// A destination's secrets, from its own YAML file that only the daemon's user may read (never in berth.yaml, never
/// in ExportConfig):
///
///     username: field17
///     password: s3cret
///     headers:                 # HTTP only
///       Authorization: Bearer abc
struct Credentials: Sendable, Equatable {
    var username: String?
    var password: String?
    var headers: [String] = []

    /// Reads `path`, refusing a file another user owns or that group or others may read.
    static func load(_ path: String, destination: String) throws -> Credentials {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw BerthError.notFound(
                "uplink destination \"\(destination)\": credentials file \"\(path)\" cannot be read: "
                    + systemErrorText(errno))
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw BerthError.invalidConfig(
                "uplink destination \"\(destination)\": credentials file \"\(path)\" is not a regular file")
        }
        guard info.st_uid == geteuid(), info.st_mode & 0o077 == 0 else {
            throw BerthError(
                .accessDenied,
                "uplink destination \"\(destination)\": credentials file \"\(path)\" must belong to uid \(geteuid()) "
                    + "and be readable by it alone (chmod 600), it has mode \(String(info.st_mode & 0o777, radix: 8))"
                    + " and uid \(info.st_uid)")
        }
        guard let node = try YAMLParser.parseFile(atPath: path) else { return Credentials() }
        let reader = try ConfigReader(node, path: "")
        var c = Credentials()
        c.username = try reader.string("username")
        c.password = try reader.string("password")
        for (name, value) in try reader.stringMap("headers") ?? [] {
            guard !name.isEmpty, !name.contains(":"), !(name + value).contains(where: \.isNewline) else {
                throw reader.error("headers", "header \(BerthError.quote(name)) is not a valid HTTP header")
            }
            c.headers.append("\(name): \(value)")
        }
        try reader.finish()
        return c
    }
}
