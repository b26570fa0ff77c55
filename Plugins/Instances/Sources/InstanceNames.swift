import BerthKit

/// Instance ids and application names: `web-jCCbfV` is the application name, a dash and six random characters
/// from `[A-Za-z0-9]` (just the six characters for an instance without a name), as sarge made them.
enum InstanceNames {
    static let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    static let suffixLength = 6

    /// A fresh candidate id; uniqueness comes from the atomic `mkdir` of its folder (`InstanceStore.create`).
    static func candidate(application: String) -> String {
        var generator = SystemRandomNumberGenerator()
        let suffix = String(
            (0..<suffixLength).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] })
        return application.isEmpty ? suffix : application + "-" + suffix
    }

    /// Checks an application name: it becomes part of file names, so no `/`, no `..`, nothing hidden, and only
    /// letters, digits, `.`, `_` and `-`. Throws `InvalidArgument` quoting the name.
    static func checkApplication(_ name: String, what: String = "application_name") throws {
        if name.contains("/") || name.contains("..") {
            throw BerthError.invalidArgument(
                "\(what) \"\(name)\" is not allowed: it may not contain \"/\" or \"..\"")
        }
        guard name.count <= 64, name.first != ".", name.first != "-",
            name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-") })
        else {
            throw BerthError.invalidArgument(
                "\(what) \"\(name)\" is not allowed: use at most 64 letters, digits, \".\", \"_\" or \"-\", "
                    + "not starting with \".\" or \"-\"")
        }
    }

    /// Whether `id` has the shape of an instance id (it may still not exist).
    static func isWellFormed(_ id: String) -> Bool {
        let suffix = id.suffix(suffixLength)
        guard suffix.count == suffixLength, suffix.allSatisfy({ alphabet.contains($0) }) else { return false }
        if id.count == suffixLength { return true }
        let prefix = id.dropLast(suffixLength)
        guard prefix.last == "-" else { return false }
        return (try? checkApplication(String(prefix.dropLast()))) != nil
    }

    /// The application part of an id ("" for a bare id).
    static func application(of id: String) -> String {
        id.count > suffixLength ? String(id.dropLast(suffixLength + 1)) : ""
    }
}
