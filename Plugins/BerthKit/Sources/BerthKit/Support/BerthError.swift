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

    /// The most a message carries over the bus, in UTF-8 bytes. Every error reply passes through `busMessage`,
    /// which cuts a longer message (a value a client sent, quoted whole) and marks the cut with the full size.
    public static let maxBusMessageBytes = 1024

    /// `message` as it goes out in an error reply: at most `maxBusMessageBytes` (the start kept, then
    /// `…(N bytes)`), and with what sd-bus refuses in a string (NUL, U+10FFFF and the other noncharacters)
    /// replaced by U+FFFD, so that the reply is always sent.
    public var busMessage: String {
        var text = message
        let size = text.utf8.count
        if size > Self.maxBusMessageBytes {
            let marker = "…(\(size) bytes)"
            text = Self.prefix(text, utf8Bytes: Self.maxBusMessageBytes - marker.utf8.count) + marker
        }
        return BusText.sanitized(text)
    }

    /// A value quoted for an error message: in double quotes, at most `limit` characters (a longer value is cut
    /// and its full size given: `"abc…" (1048576 bytes)`), control characters, quotes, backslashes and what sd-bus
    /// refuses escaped. Use it whenever a message names a value a client sent.
    public static func quote(_ value: String, limit: Int = 200) -> String {
        var out = "\""
        var shown = 0
        var cut = false
        for scalar in value.unicodeScalars {
            if shown == limit {
                cut = true
                break
            }
            shown += 1
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F || BusText.refuses(scalar) {
                    out += "\\u{" + String(scalar.value, radix: 16) + "}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += cut ? "…\"" : "\""
        if cut { out += " (\(value.utf8.count) bytes)" }
        return out
    }

    /// The longest start of `text` of at most `bytes` UTF-8 bytes that does not split a character's encoding.
    static func prefix(_ text: String, utf8Bytes bytes: Int) -> String {
        let utf8 = Array(text.utf8.prefix(max(0, bytes) + 1))
        guard utf8.count > bytes else { return text }
        var end = max(0, bytes)
        // Back up over continuation bytes (10xxxxxx) so the cut falls before a scalar's first byte.
        while end > 0, utf8[end] & 0xC0 == 0x80 { end -= 1 }
        return String(decoding: utf8[..<end], as: UTF8.self)
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
