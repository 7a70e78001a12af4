import TidingsStore

/// The projection's base tables: the state as of the last checkpoint, in SQLite. Queries run
/// on whatever connection the caller holds, inside the caller's snapshot.
///
/// `user_events` rows hold runs of consecutive stream entries of one user, packed as varint
/// pairs (seq delta, unread count after): one row per user per checkpoint, not per event,
/// which is what keeps a durable append from touching a random page per event.
struct ProjectionBase {
    let database: Database
    var prefix: String = ""

    /// The user's newest entry in the base tables.
    func lastEntry(user: Int64) throws -> StreamEntry? {
        let statement = try database.cached(
            "SELECT first_stream_seq, entries FROM \(prefix)user_events WHERE user_no = ?1 ORDER BY first_stream_seq DESC LIMIT 1"
        )
        statement.bind(1, user)
        defer { statement.reset() }
        guard try statement.step() else { return nil }
        return try StreamEntry.decodeRun(statement.blob(1), firstStreamSeq: statement.int64(0)).last
    }

    /// Entries with stream_seq > `afterStreamSeq`, oldest first, at most `limit`.
    func entries(user: Int64, afterStreamSeq: Int64, limit: Int) throws -> [StreamEntry] {
        guard limit > 0 else { return [] }
        let statement = try database.cached(
            """
            SELECT first_stream_seq, entries FROM \(prefix)user_events WHERE user_no = ?1 AND first_stream_seq >= COALESCE(
                (SELECT max(first_stream_seq) FROM \(prefix)user_events WHERE user_no = ?1 AND first_stream_seq <= ?2), 0)
            ORDER BY first_stream_seq
            """)
        statement.bind(1, user)
        statement.bind(2, afterStreamSeq + 1)
        var out: [StreamEntry] = []
        while out.count < limit, try statement.step() {
            for entry in try StreamEntry.decodeRun(statement.blob(1), firstStreamSeq: statement.int64(0))
            where entry.streamSeq > afterStreamSeq {
                out.append(entry)
                if out.count == limit { break }
            }
        }
        statement.reset()
        return out
    }

    // MARK: Notifications

    func createdSeq(_ key: NotificationKey) throws -> Int64? {
        let statement = try database.cached(
            "SELECT created_seq FROM \(prefix)notifications WHERE user_no = ?1 AND notification_id = ?2")
        statement.bind(1, key.userNo)
        statement.bind(2, blob: key.id)
        defer { statement.reset() }
        return try statement.step() ? statement.int64(0) : nil
    }

    func isUnread(user: Int64, createdSeq: Int64) throws -> Bool {
        let statement = try database.cached("SELECT 1 FROM \(prefix)unread WHERE user_no = ?1 AND created_seq = ?2")
        statement.bind(1, user)
        statement.bind(2, createdSeq)
        defer { statement.reset() }
        return try statement.step()
    }

    /// Created seqs of the user's unread notifications with `after < created_seq <= through`,
    /// oldest first (newest first with `newestFirst`), at most `limit`.
    func unreadSeqs(
        user: Int64, after: Int64, through: Int64 = .max, newestFirst: Bool = false, limit: Int = .max
    ) throws -> [Int64] {
        let statement = try database.cached(
            "SELECT created_seq FROM \(prefix)unread WHERE user_no = ?1 AND created_seq > ?2 AND created_seq <= ?3 ORDER BY created_seq"
                + (newestFirst ? " DESC" : ""))
        statement.bind(1, user)
        statement.bind(2, after)
        statement.bind(3, through)
        var out: [Int64] = []
        while out.count < limit, try statement.step() { out.append(statement.int64(0)) }
        statement.reset()
        return out
    }

    func unreadCount(user: Int64, after: Int64, through: Int64) throws -> Int64 {
        let statement = try database.cached(
            "SELECT count(*) FROM \(prefix)unread WHERE user_no = ?1 AND created_seq > ?2 AND created_seq <= ?3")
        statement.bind(1, user)
        statement.bind(2, after)
        statement.bind(3, through)
        defer { statement.reset() }
        _ = try statement.step()
        return statement.int64(0)
    }

    // MARK: Explicit event ids

    func seqs(forIDHash hash: Int64) throws -> [Int64] {
        let statement = try database.cached("SELECT seq FROM \(prefix)event_ids WHERE id_hash = ?1")
        statement.bind(1, hash)
        var out: [Int64] = []
        while try statement.step() { out.append(statement.int64(0)) }
        statement.reset()
        return out
    }
}
