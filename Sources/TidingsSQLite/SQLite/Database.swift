internal import CSQLite
import Synchronization
import TidingsStore

/// One SQLite connection. Owns its `sqlite3` handle; not thread-safe, so each connection is used
/// by one thread at a time (the writer thread, or one reader borrowed from the pool).
/// `@unchecked Sendable`: a connection moves between threads (the reader pool lends it out) but is
/// used by one thread at a time; the pool and the writer queue guarantee that.
final class Database: @unchecked Sendable {
    private(set) var handle: OpaquePointer?
    let path: String
    /// Prepared statements by the address of their SQL literal: finding one costs a hash of an
    /// integer, not of the SQL text (a per-user replay finds two per block it reads).
    private var statementCache: [UInt: Statement] = [:]
    /// Prepared statements whose SQL is composed at run time (a table prefix), by their text.
    private var composedStatementCache: [String: Statement] = [:]

    enum Mode {
        case readWrite
        case readOnly
    }

    /// Process-wide SQLite settings, applied once before the first connection opens (later
    /// they are refused, harmlessly, if another library opened SQLite first).
    private static let configured: Bool = csqlite_disable_memory_statistics() == SQLITE_OK

    init(path: String, mode: Mode, busyTimeoutMilliseconds: Int32 = 5_000) throws {
        _ = Self.configured
        self.path = path
        var handle: OpaquePointer?
        let flags =
            (mode == .readWrite ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY)
            | SQLITE_OPEN_NOMUTEX
        let code = sqlite3_open_v2(path, &handle, flags, nil)
        guard code == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(handle)
            throw SQLiteError(code: code, message: message, operation: "open \(path)")
        }
        self.handle = handle
        sqlite3_extended_result_codes(handle, 1)
        sqlite3_busy_timeout(handle, busyTimeoutMilliseconds)
    }

    deinit {
        assert(handle == nil, "Database \(path) was not closed")
        if handle != nil { close() }
    }

    func close() {
        statementCache.removeAll()
        composedStatementCache.removeAll()
        sqlite3_close_v2(handle)
        handle = nil
    }

    /// Runs one or more statements that return no rows.
    func execute(_ sql: String) throws {
        var errorMessage: UnsafeMutablePointer<CChar>?
        let code = sqlite3_exec(handle, sql, nil, nil, &errorMessage)
        if code != SQLITE_OK {
            let message = errorMessage.map { String(cString: $0) } ?? lastErrorMessage
            sqlite3_free(errorMessage)
            throw SQLiteError(code: code, message: message, operation: sql)
        }
    }

    /// A prepared statement kept for the life of the connection, reset and with its bindings
    /// cleared. Hot paths use this so SQL is compiled once.
    func cached(_ sql: StaticString) throws -> Statement {
        let key = UInt(bitPattern: sql.utf8Start)
        if let statement = statementCache[key] {
            statement.reset()
            return statement
        }
        let statement = try Statement(database: self, sql: sql.description)
        statementCache[key] = statement
        return statement
    }

    /// `cached` for SQL composed at run time.
    func cached(composed sql: String) throws -> Statement {
        if let statement = composedStatementCache[sql] {
            statement.reset()
            return statement
        }
        let statement = try Statement(database: self, sql: sql)
        composedStatementCache[sql] = statement
        return statement
    }

    /// A one-off prepared statement.
    func prepare(_ sql: String) throws -> Statement {
        try Statement(database: self, sql: sql)
    }

    var lastErrorMessage: String { String(cString: sqlite3_errmsg(handle)) }
    var lastErrorCode: Int32 { sqlite3_extended_errcode(handle) }
    var changes: Int { Int(sqlite3_changes(handle)) }
    var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }
    var isInTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }

    func error(_ code: Int32, _ operation: String) -> SQLiteError {
        SQLiteError(code: code, message: lastErrorMessage, operation: operation)
    }

    /// How a transaction takes its locks (SQLite's `BEGIN DEFERRED` and `BEGIN IMMEDIATE`).
    enum TransactionKind: String {
        /// A read lock at the first read, a write lock at the first write: for reads.
        case deferred = "DEFERRED"
        /// The write lock at once (waiting up to the busy timeout for another process): for
        /// writes, so a transaction never fails halfway for want of the lock.
        case immediate = "IMMEDIATE"
    }

    func begin(_ kind: TransactionKind) throws {
        try execute("BEGIN \(kind.rawValue)")
    }

    /// Runs `body` in a transaction; rolls back when it throws.
    func transaction<T>(_ kind: TransactionKind = .deferred, _ body: () throws -> T) throws -> T {
        try begin(kind)
        do {
            let result = try body()
            resetBusyStatements()
            try execute("COMMIT")
            return result
        } catch {
            rollback()
            throw error
        }
    }

    func commit() throws {
        resetBusyStatements()
        try execute("COMMIT")
    }

    /// Rolls back the open transaction, if any. A ROLLBACK that fails is not reported: the
    /// caller is already handling the failure that made it roll back, and SQLite fails a
    /// ROLLBACK only when it has rolled back already (an I/O error or a full disk does that) or
    /// the connection is broken, which the next statement reports.
    func rollback() {
        resetBusyStatements()
        if isInTransaction { _ = sqlite3_exec(handle, "ROLLBACK", nil, nil, nil) }
    }

    /// Resets every statement left mid-iteration: a statement that is not reset keeps its read
    /// transaction (and so its snapshot) open past COMMIT.
    func resetBusyStatements() {
        var statement = sqlite3_next_stmt(handle, nil)
        while let current = statement {
            if sqlite3_stmt_busy(current) != 0 { sqlite3_reset(current) }
            statement = sqlite3_next_stmt(handle, current)
        }
    }

    /// Runs `body` inside a read transaction so that every query sees one snapshot.
    func readSnapshot<T>(_ body: () throws -> T) throws -> T {
        try transaction(.deferred, body)
    }
}
