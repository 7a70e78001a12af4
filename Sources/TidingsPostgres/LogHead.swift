import Logging
import NIOCore
import PostgresNIO
import TidingsStore

/// The row every commit locks (`tidings_head`): the log's head and its running totals. Taking
/// it `FOR UPDATE` serializes commits across every node, so seq order is commit order and no
/// reader ever sees seq N+1 before N.
struct LogHead: Sendable {
    var seq: Int64
    var hash: [UInt8]
    var timestamp: Int64
    var nextUserNo: Int64
    var dictionaryID: Int64
    /// Record bytes sealed before there was a dictionary (the dictionary is made at 64 KiB).
    var undictionariedBytes: Int64
    var blocks: Int64
    var rawBytes: Int64
    var storedBytes: Int64
    /// Bumped by every rebuild of the projection.
    var generation: Int64

    fileprivate static let columns =
        "seq, hash, ts, next_user_no, dictionary_id, undictionaried_bytes, blocks, raw_bytes, stored_bytes, generation"

    fileprivate typealias Row = (Int64, ByteBuffer, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64)

    /// Reads the head, locking it for this transaction when `lock` (a statement prepared once
    /// per connection: every group commit begins with it).
    static func read(_ connection: PostgresConnection, lock: Bool, logger: Logger) async throws -> LogHead {
        var rows: [Row] = []
        if lock {
            for try await row in try await connection.execute(LockedHeadStatement(), logger: logger) {
                rows.append(row)
            }
        } else {
            rows = try await connection.rows(
                "SELECT \(unescaped: columns) FROM tidings_head WHERE id = 1", as: Row.self, logger: logger)
        }
        guard let row = rows.first else { throw StoreError(.internal, "the store's head row is missing") }
        return LogHead(
            seq: row.0, hash: row.1.bytes, timestamp: row.2, nextUserNo: row.3, dictionaryID: row.4,
            undictionariedBytes: row.5, blocks: row.6, rawBytes: row.7, storedBytes: row.8, generation: row.9)
    }

    func write(_ connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run(
            """
            UPDATE tidings_head SET seq = \(seq), hash = \(hash.buffer), ts = \(timestamp),
                next_user_no = \(nextUserNo), dictionary_id = \(dictionaryID),
                undictionaried_bytes = \(undictionariedBytes), blocks = \(blocks), raw_bytes = \(rawBytes),
                stored_bytes = \(storedBytes), generation = \(generation)
            WHERE id = 1
            """, logger: logger)
    }
}

private struct LockedHeadStatement: PostgresPreparedStatement {
    static let sql = "SELECT \(LogHead.columns) FROM tidings_head WHERE id = 1 FOR UPDATE"
    typealias Row = LogHead.Row

    func makeBindings() throws -> PostgresBindings { PostgresBindings() }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}
