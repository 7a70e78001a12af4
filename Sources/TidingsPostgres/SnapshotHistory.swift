import Logging
import NIOCore
import PostgresNIO
import TidingsStore

/// The log's history as one read snapshot sees it, for the cursor checks: the head, and the
/// check bytes at the one earlier seq the request's cursor is anchored at, read in the same
/// query as the head (a cursor check costs no round trip of its own).
struct SnapshotHistory: LogHistory {
    let head: CursorAnchor
    let probedSeq: Int64
    let probedCheck: UInt32?

    func check(at seq: Int64) throws -> UInt32 {
        guard seq == probedSeq, let probedCheck else {
            throw StoreError(.internal, "the log has no block holding seq \(seq)")
        }
        return probedCheck
    }

    /// The seq a cursor's anchor names, to probe with the head; 0 (nothing to probe) for no
    /// cursor, a cursor without an anchor, or one that does not parse (its check reports that).
    static func anchorSeq(_ cursor: String?) -> Int64 {
        guard let cursor, let parsed = try? Cursor.parse(cursor) else { return 0 }
        return parsed.anchor?.seq ?? 0
    }

    init(head: CursorAnchor, probedSeq: Int64, probed: ByteBuffer?) {
        self.head = head
        self.probedSeq = probedSeq
        probedCheck = probed.flatMap { $0.readableBytes == Block.checkBytes ? CursorAnchor.check($0.bytes) : nil }
    }

    /// The head, and the check bytes at the anchor of `cursor`, in the caller's snapshot.
    static func read(
        for cursor: String?, on connection: PostgresConnection, logger: Logger
    ) async throws
        -> SnapshotHistory
    {
        let seq = anchorSeq(cursor)
        // The check bytes of `seq` from its block (NULL for seq 0: no block starts there).
        let rows = try await connection.rows(
            """
            SELECT h.seq, h.hash, (SELECT substring(b.checks FROM (\(seq) - b.first_seq)::int4 * 4 + 1 FOR 4)
                FROM tidings_blocks b WHERE b.first_seq <= \(seq) ORDER BY b.first_seq DESC LIMIT 1)
            FROM tidings_head h WHERE h.id = 1
            """, as: (Int64, ByteBuffer, ByteBuffer?).self, logger: logger)
        guard let row = rows.first else { throw StoreError(.internal, "the store's head row is missing") }
        return SnapshotHistory(head: CursorAnchor(seq: row.0, hash: row.1.bytes), probedSeq: seq, probed: row.2)
    }
}

/// A user's number and head, with the log's history, as one query of a read snapshot sees them.
struct UserSnapshot {
    /// Nil for a user with no events.
    let user: (userNo: Int64, streamSeq: Int64, counts: InboxCounts)?
    let history: SnapshotHistory

    var streamSeq: Int64 { user?.streamSeq ?? 0 }
    var counts: InboxCounts { user?.counts ?? .zero }
    var head: (streamSeq: Int64, counts: InboxCounts) { (streamSeq, counts) }

    static func read(
        _ userID: String, cursor: String?, on connection: PostgresConnection, logger: Logger
    ) async throws -> UserSnapshot {
        let seq = SnapshotHistory.anchorSeq(cursor)
        let rows = try await connection.rows(
            """
            SELECT h.seq, h.hash, u.user_no, u.stream_seq, u.unread, u.unseen, u.archived,
                (SELECT substring(b.checks FROM (\(seq) - b.first_seq)::int4 * 4 + 1 FOR 4)
                    FROM tidings_blocks b WHERE b.first_seq <= \(seq) ORDER BY b.first_seq DESC LIMIT 1)
            FROM tidings_head h LEFT JOIN tidings_users u ON u.user_id = \(userID) WHERE h.id = 1
            """, as: (Int64, ByteBuffer, Int64?, Int64?, Int64?, Int64?, Int64?, ByteBuffer?).self, logger: logger)
        guard let row = rows.first else { throw StoreError(.internal, "the store's head row is missing") }
        let history = SnapshotHistory(head: CursorAnchor(seq: row.0, hash: row.1.bytes), probedSeq: seq, probed: row.7)
        guard let userNo = row.2, let streamSeq = row.3, let unread = row.4, let unseen = row.5, let archived = row.6
        else {
            return UserSnapshot(user: nil, history: history)
        }
        return UserSnapshot(
            user: (userNo, streamSeq, InboxCounts(unread: unread, unseen: unseen, archived: archived)), history: history
        )
    }
}
