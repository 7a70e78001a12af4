internal import CSQLite
import TidingsStore

/// An error reported by SQLite: the result code, SQLite's message and what the store was doing.
public struct SQLiteError: Error, CustomStringConvertible, Sendable {
    /// The primary or extended SQLite result code (`SQLITE_BUSY`, `SQLITE_FULL`, ...).
    public let code: Int32
    public let message: String
    /// What the store was doing: a statement's SQL or an operation name.
    public let operation: String

    public var description: String { "SQLite error \(code) (\(message)) during \(operation)" }

    /// True for faults of the disk or file system that a retry may get past once the operator
    /// fixes them (disk full, read-only file, I/O error), as opposed to bugs or corruption.
    public var isResourceFault: Bool {
        switch code & 0xFF {
        case SQLITE_FULL, SQLITE_IOERR, SQLITE_READONLY, SQLITE_CANTOPEN, SQLITE_BUSY, SQLITE_LOCKED, SQLITE_NOMEM:
            true
        default: false
        }
    }

    public var isCorruption: Bool {
        switch code & 0xFF {
        case SQLITE_CORRUPT, SQLITE_NOTADB: true
        default: false
        }
    }
}
