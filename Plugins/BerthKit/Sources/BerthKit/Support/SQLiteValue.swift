import CBerthShim

/// One value SQLite stores: what a statement binds and what a column holds.
public enum SQLiteValue: Sendable, Equatable, Hashable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])

    /// The value as an integer, when it is one (SQLite's own affinity may have stored an integral REAL).
    public var integer: Int64? {
        switch self {
        case .integer(let value): value
        case .real(let value): Int64(exactly: value)
        default: nil
        }
    }

    public var real: Double? {
        switch self {
        case .real(let value): value
        case .integer(let value): Double(value)
        default: nil
        }
    }

    public var text: String? {
        if case .text(let value) = self { return value }
        return nil
    }

    public var isNull: Bool { self == .null }
}

extension SQLiteValue: ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral, ExpressibleByStringLiteral,
    ExpressibleByNilLiteral, ExpressibleByBooleanLiteral
{
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(floatLiteral value: Double) { self = .real(value) }
    public init(stringLiteral value: String) { self = .text(value) }
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .integer(value ? 1 : 0) }
}

extension SQLiteValue {
    public init(_ value: Int) { self = .integer(Int64(value)) }
    public init(_ value: Int64) { self = .integer(value) }
    public init(_ value: UInt64) { self = .integer(Int64(bitPattern: value)) }
    public init(_ value: Double) { self = .real(value) }
    public init(_ value: String) { self = .text(value) }
    public init(_ value: Bool) { self = .integer(value ? 1 : 0) }
    /// `.null` for nil, else the wrapped value.
    public init(_ value: String?) { self = value.map { .text($0) } ?? .null }
    public init(_ value: Int64?) { self = value.map { .integer($0) } ?? .null }
    public init(_ value: Double?) { self = value.map { .real($0) } ?? .null }
}

/// SQLite result codes as BerthError: the database path and SQLite's own sentence, plus what was being done.
enum SQLiteFailure {
    static func error(_ code: Int32, handle: OpaquePointer?, path: String, doing: String) -> BerthError {
        let detail = handle.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(code))
        let message = "SQLite database \"\(path)\": \(doing): \(detail)"
        switch code & 0xff {
        case SQLITE_FULL: return .init(.storageFull, message)
        case SQLITE_BUSY, SQLITE_LOCKED: return .init(.busy, message)
        case SQLITE_CONSTRAINT: return .init(.alreadyExists, message)
        case SQLITE_PERM, SQLITE_READONLY, SQLITE_AUTH: return .init(.accessDenied, message)
        case SQLITE_MISUSE, SQLITE_RANGE: return .init(.invalidArgument, message)
        default: return .init(.failed, message)
        }
    }

    /// A statement's SQL shortened for messages.
    static func abbreviate(_ sql: String) -> String {
        let flat = sql.split(whereSeparator: { $0 == "\n" || $0 == " " || $0 == "\t" }).joined(separator: " ")
        return flat.count <= 60 ? flat : String(flat.prefix(57)) + "..."
    }
}
