/// The one error type that crosses the bus. Each code is one D-Bus error name `org.berth.Berth1.Error.<Code>`
/// (listed in dbus/README.md); the message is a sentence naming the object and quoting the offending value.
public struct BerthError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, CaseIterable {
        case notFound = "NotFound"
        case alreadyExists = "AlreadyExists"
        case invalidArgument = "InvalidArgument"
        case invalidConfig = "InvalidConfig"
        case busy = "Busy"
        case failed = "Failed"
        case notSupported = "NotSupported"
        case pluginFailed = "PluginFailed"
        case healthCheckFailed = "HealthCheckFailed"
        case deviceUnavailable = "DeviceUnavailable"
        case storageFull = "StorageFull"
        case accessDenied = "AccessDenied"
        case cancelled = "Cancelled"
        case timeout = "Timeout"

        public static let prefix = "org.berth.Berth1.Error."
        /// The D-Bus error name, e.g. `org.berth.Berth1.Error.NotFound`.
        public var dbusName: String { Self.prefix + rawValue }

        public init?(dbusName: String) {
            guard dbusName.hasPrefix(Self.prefix) else { return nil }
            self.init(rawValue: String(dbusName.dropFirst(Self.prefix.count)))
        }
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    public static func notFound(_ message: String) -> BerthError { .init(.notFound, message) }
    public static func alreadyExists(_ message: String) -> BerthError { .init(.alreadyExists, message) }
    public static func invalidArgument(_ message: String) -> BerthError { .init(.invalidArgument, message) }
    public static func invalidConfig(_ message: String) -> BerthError { .init(.invalidConfig, message) }
    public static func busy(_ message: String) -> BerthError { .init(.busy, message) }
    public static func failed(_ message: String) -> BerthError { .init(.failed, message) }
    public static func notSupported(_ message: String) -> BerthError { .init(.notSupported, message) }

    /// Any error as a BerthError: a BerthError stays itself, anything else becomes `Failed` with its text.
    public static func wrapping(_ error: any Error) -> BerthError {
        if let error = error as? BerthError { return error }
        return .failed(String(describing: error))
    }
}

/// An error of the operating system: the call that failed and errno, as a sentence.
public struct SystemError: Error, Sendable, CustomStringConvertible {
    public var operation: String
    public var errno: Int32

    public init(_ operation: String, errno: Int32) {
        self.operation = operation
        self.errno = errno
    }

    public var description: String { "\(operation): \(systemErrorText(errno))" }
}
