import TidingsStore

/// The head of the log as one SQLite snapshot sees it: the `head` row, which every append and
/// checkpoint updates in its transaction.
struct LogSnapshot: Sendable, Equatable {
    var headSeq: Int64
    var headHash: [UInt8]
    var headTimestamp: Int64
    /// Events up to here are in sealed blocks; later ones in the tail.
    var sealedSeq: Int64
    /// The projection's base tables reflect events up to here.
    var checkpointSeq: Int64
    /// Bumped whenever a rebuild replaces the base tables, so other processes drop their overlay.
    var projectionGeneration: Int64

    /// The head as cursors carry it.
    var anchor: CursorAnchor { CursorAnchor(seq: headSeq, hash: headHash) }

    static func read(_ database: Database) throws -> LogSnapshot {
        let statement = try database.cached(
            "SELECT seq, hash, ts, sealed_seq, checkpoint_seq, projection_generation FROM head WHERE id = 1")
        defer { statement.reset() }
        guard try statement.step() else { throw StoreError(.internal, "the store's head row is missing") }
        return LogSnapshot(
            headSeq: statement.int64(0), headHash: statement.bytes(1), headTimestamp: statement.int64(2),
            sealedSeq: statement.int64(3), checkpointSeq: statement.int64(4),
            projectionGeneration: statement.int64(5))
    }

    func write(_ database: Database) throws {
        let statement = try database.cached(
            """
            UPDATE head SET seq = ?1, hash = ?2, ts = ?3, sealed_seq = ?4, checkpoint_seq = ?5,
                projection_generation = ?6 WHERE id = 1
            """)
        statement.bind(1, headSeq)
        statement.bind(2, blob: headHash)
        statement.bind(3, headTimestamp)
        statement.bind(4, sealedSeq)
        statement.bind(5, checkpointSeq)
        statement.bind(6, projectionGeneration)
        try statement.run()
    }
}
