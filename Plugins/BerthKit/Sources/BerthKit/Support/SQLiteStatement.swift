import CBerthShim

/// A prepared statement: bind by 1-based index, `step()` through rows, read typed columns (0-based), `reset()` to
/// reuse. Keeps its connection alive. Not Sendable, like its connection.
public final class SQLiteStatement {
    public let database: SQLiteDatabase
    public let sql: String
    private let handle: OpaquePointer

    init(database: SQLiteDatabase, handle: OpaquePointer, sql: String) {
        self.database = database
        self.handle = handle
        self.sql = sql
    }

    deinit {
        sqlite3_finalize(handle)
    }

    // MARK: Binding

    /// Binds one value to the 1-based parameter `index`.
    public func bind(_ value: SQLiteValue, at index: Int32) throws {
        let rc: Int32
        switch value {
        case .null: rc = sqlite3_bind_null(handle, index)
        case .integer(let v): rc = sqlite3_bind_int64(handle, index, v)
        case .real(let v): rc = sqlite3_bind_double(handle, index, v)
        case .text(let v): rc = sqlite3_bind_text(handle, index, v, -1, cberth_sqlite_transient())
        case .blob(let v):
            rc = v.withUnsafeBytes { bytes in
                // A zero-length blob still needs a non-null pointer to be a blob rather than NULL.
                sqlite3_bind_blob64(
                    handle, index, bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1), UInt64(bytes.count),
                    cberth_sqlite_transient())
            }
        }
        try check(rc, "bind parameter \(index)")
    }

    /// Clears old bindings and binds `values` to parameters 1...n.
    public func bind(_ values: [SQLiteValue]) throws {
        try check(sqlite3_reset(handle), "reset")
        sqlite3_clear_bindings(handle)
        let expected = Int(sqlite3_bind_parameter_count(handle))
        guard values.count == expected else {
            throw BerthError.invalidArgument(
                "SQLite statement \"\(SQLiteFailure.abbreviate(sql))\" takes \(expected) arguments, got \(values.count)"
            )
        }
        for (offset, value) in values.enumerated() { try bind(value, at: Int32(offset + 1)) }
    }

    // MARK: Stepping

    /// Advances to the next row: true when a row is available, false when the statement is done.
    public func step() throws -> Bool {
        let rc = sqlite3_step(handle)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            // The step's own error code is kept; reset would report it again.
            let error = SQLiteFailure.error(
                rc, handle: database.handle, path: database.path,
                doing: SQLiteFailure.abbreviate(sql))
            sqlite3_reset(handle)
            throw error
        }
    }

    /// Makes the statement ready to run again (bindings are kept).
    public func reset() throws {
        try check(sqlite3_reset(handle), "reset")
    }

    /// Binds `arguments`, steps to completion and resets.
    public func run(_ arguments: [SQLiteValue] = []) throws {
        try bind(arguments)
        defer { sqlite3_reset(handle) }
        while try step() {}
    }

    /// Binds `arguments` and maps every row.
    public func rows<T>(_ arguments: [SQLiteValue] = [], _ row: (SQLiteStatement) throws -> T) throws -> [T] {
        try bind(arguments)
        defer { sqlite3_reset(handle) }
        var result: [T] = []
        while try step() { result.append(try row(self)) }
        return result
    }

    /// The first column of the first row, or nil when there is no row.
    public func firstValue(_ arguments: [SQLiteValue] = []) throws -> SQLiteValue? {
        try bind(arguments)
        defer { sqlite3_reset(handle) }
        return try step() ? value(at: 0) : nil
    }

    // MARK: Columns (0-based)

    public var columnCount: Int { Int(sqlite3_column_count(handle)) }

    public func columnName(at index: Int32) -> String {
        sqlite3_column_name(handle, index).map { String(cString: $0) } ?? ""
    }

    public func isNull(at index: Int32) -> Bool { sqlite3_column_type(handle, index) == SQLITE_NULL }
    public func int64(at index: Int32) -> Int64 { sqlite3_column_int64(handle, index) }
    public func int(at index: Int32) -> Int { Int(sqlite3_column_int64(handle, index)) }
    public func double(at index: Int32) -> Double { sqlite3_column_double(handle, index) }

    /// The column as text; nil for NULL.
    public func text(at index: Int32) -> String? {
        guard let pointer = sqlite3_column_text(handle, index) else { return nil }
        return String(cString: pointer)
    }

    public func optionalInt64(at index: Int32) -> Int64? { isNull(at: index) ? nil : int64(at: index) }
    public func optionalDouble(at index: Int32) -> Double? { isNull(at: index) ? nil : double(at: index) }

    public func blob(at index: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(handle, index))
        guard count > 0, let pointer = sqlite3_column_blob(handle, index) else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }

    /// The column as whatever SQLite holds.
    public func value(at index: Int32) -> SQLiteValue {
        switch sqlite3_column_type(handle, index) {
        case SQLITE_INTEGER: .integer(int64(at: index))
        case SQLITE_FLOAT: .real(double(at: index))
        case SQLITE_TEXT: .text(text(at: index) ?? "")
        case SQLITE_BLOB: .blob(blob(at: index))
        default: .null
        }
    }

    private func check(_ rc: Int32, _ doing: String) throws {
        guard rc == SQLITE_OK else {
            throw SQLiteFailure.error(
                rc, handle: database.handle, path: database.path,
                doing: "\(doing) of \"\(SQLiteFailure.abbreviate(sql))\"")
        }
    }
}
