internal import CSQLite
import TidingsStore

/// A prepared statement. Finalized when released. Bind indexes start at 1, column indexes at 0,
/// as in SQLite's C API.
final class Statement {
    private var handle: OpaquePointer?
    let sql: String
    private unowned let database: Database
    /// The first binding SQLite refused since the last reset (an index out of range, a value
    /// too big): `step` throws it, so the statement never runs with a parameter left unbound.
    private var bindFailure: SQLiteError?

    init(database: Database, sql: String) throws {
        self.database = database
        self.sql = sql
        var handle: OpaquePointer?
        let code = sqlite3_prepare_v3(database.handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &handle, nil)
        guard code == SQLITE_OK, let handle else {
            throw database.error(code, sql)
        }
        self.handle = handle
    }

    deinit {
        sqlite3_finalize(handle)
    }

    func reset() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
        bindFailure = nil
    }

    // MARK: Binding

    func bind(_ index: Int32, _ value: Int64) {
        checkBinding(sqlite3_bind_int64(handle, index, value), index)
    }

    func bind(_ index: Int32, _ value: Int) {
        checkBinding(sqlite3_bind_int64(handle, index, Int64(value)), index)
    }

    func bind(_ index: Int32, _ value: String) {
        checkBinding(sqlite3_bind_text(handle, index, value, -1, csqlite_transient()), index)
    }

    func bindNull(_ index: Int32) {
        checkBinding(sqlite3_bind_null(handle, index), index)
    }

    func bind(_ index: Int32, blob: UnsafeRawBufferPointer) {
        // A zero-length blob must still bind as a blob, not NULL: SQLite treats a nil pointer as NULL.
        if let base = blob.baseAddress {
            guard blob.count <= Int32.max else {
                recordBindFailure(
                    SQLiteError(code: SQLITE_TOOBIG, message: "a blob of \(blob.count) bytes", operation: sql))
                return
            }
            checkBinding(sqlite3_bind_blob(handle, index, base, Int32(blob.count), csqlite_transient()), index)
        } else {
            checkBinding(sqlite3_bind_zeroblob(handle, index, 0), index)
        }
    }

    private func checkBinding(_ code: Int32, _ index: Int32) {
        guard code != SQLITE_OK else { return }
        recordBindFailure(
            SQLiteError(code: code, message: "binding parameter \(index): \(database.lastErrorMessage)", operation: sql)
        )
    }

    private func recordBindFailure(_ error: SQLiteError) {
        if bindFailure == nil { bindFailure = error }
    }

    func bind(_ index: Int32, blob: [UInt8]) {
        blob.withUnsafeBytes { bind(index, blob: $0) }
    }

    // MARK: Stepping

    /// Steps once; true when a row is available.
    @discardableResult
    func step() throws -> Bool {
        if let bindFailure { throw bindFailure }
        let code = sqlite3_step(handle)
        switch code {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw database.error(code, sql)
        }
    }

    /// Steps until done, for statements that return no rows.
    func run() throws {
        while try step() {}
        sqlite3_reset(handle)
    }

    // MARK: Columns

    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }
    func int(_ column: Int32) -> Int { Int(sqlite3_column_int64(handle, column)) }
    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }

    func string(_ column: Int32) -> String {
        guard let text = sqlite3_column_text(handle, column) else { return "" }
        let count = Int(sqlite3_column_bytes(handle, column))
        return String(decoding: UnsafeRawBufferPointer(start: text, count: count), as: UTF8.self)
    }

    /// The column's bytes, valid until the next step, reset or finalize.
    func blob(_ column: Int32) -> UnsafeRawBufferPointer {
        let pointer = sqlite3_column_blob(handle, column)
        let count = Int(sqlite3_column_bytes(handle, column))
        return UnsafeRawBufferPointer(start: pointer, count: count)
    }

    func bytes(_ column: Int32) -> [UInt8] { Array(blob(column)) }
}
