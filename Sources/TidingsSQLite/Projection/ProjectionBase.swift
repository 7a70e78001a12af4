import TidingsStore

/// The projection's base tables: the state as of the last checkpoint, in SQLite. Queries run
/// on whatever connection the caller holds, inside the caller's snapshot.
///
/// `user_events` rows hold runs of consecutive stream entries of one user, packed as varints
/// (seq delta, then each count's change): one row per user per checkpoint, not per event,
/// which is what keeps a durable append from touching a random page per event.
struct ProjectionBase {
    let database: Database
    var prefix: String = ""

    /// The user's newest entry in the base tables.
    func lastEntry(user: Int64) throws -> StreamEntry? {
        let statement = try database.cached(
            composed:
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
            composed:
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
            composed:
                "SELECT created_seq FROM \(prefix)notifications WHERE user_no = ?1 AND notification_id = ?2")
        statement.bind(1, key.userNo)
        statement.bind(2, blob: key.id)
        defer { statement.reset() }
        return try statement.step() ? statement.int64(0) : nil
    }

    /// The notification's row in `states`; nil when it has none (read, seen, neither archived
    /// nor snoozed).
    func state(user: Int64, createdSeq: Int64) throws -> NotificationState? {
        let statement = try database.cached(
            composed:
                "SELECT flags, snoozed_until FROM \(prefix)states WHERE user_no = ?1 AND created_seq = ?2")
        statement.bind(1, user)
        statement.bind(2, createdSeq)
        defer { statement.reset() }
        guard try statement.step() else { return nil }
        return NotificationState(
            createdSeq: createdSeq, flags: UInt8(truncatingIfNeeded: statement.int64(0)),
            snoozedUntil: statement.int64(1))
    }

    /// The user's notifications with `after < created_seq <= through` whose `flags & mask ==
    /// value`, oldest first (newest first with `newestFirst`), at most `limit`. `value` must
    /// require a flag (`value != 0`): notifications without a row have none.
    func states(
        user: Int64, after: Int64, through: Int64 = .max, mask: UInt8, value: UInt8, newestFirst: Bool = false,
        limit: Int = .max
    ) throws -> [NotificationState] {
        precondition(value & mask != 0, "only notifications with a flag set have rows")
        let statement = try database.cached(
            composed:
                """
                SELECT created_seq, flags, snoozed_until FROM \(prefix)states
                WHERE user_no = ?1 AND created_seq > ?2 AND created_seq <= ?3 AND flags & ?4 = ?5
                ORDER BY created_seq
                """ + (newestFirst ? " DESC" : ""))
        statement.bind(1, user)
        statement.bind(2, after)
        statement.bind(3, through)
        statement.bind(4, Int64(mask))
        statement.bind(5, Int64(value))
        var out: [NotificationState] = []
        while out.count < limit, try statement.step() {
            out.append(
                NotificationState(
                    createdSeq: statement.int64(0), flags: UInt8(truncatingIfNeeded: statement.int64(1)),
                    snoozedUntil: statement.int64(2)))
        }
        statement.reset()
        return out
    }

    /// Every notification of the user created at or before `through` with its state, oldest
    /// first: the ones without a row too.
    func allStates(user: Int64, through: Int64) throws -> [NotificationState] {
        let statement = try database.cached(
            composed:
                """
                SELECT n.created_seq, coalesce(s.flags, 0), coalesce(s.snoozed_until, 0) FROM \(prefix)notifications n
                LEFT JOIN \(prefix)states s ON s.user_no = n.user_no AND s.created_seq = n.created_seq
                WHERE n.user_no = ?1 AND n.created_seq <= ?2
                """)
        statement.bind(1, user)
        statement.bind(2, through)
        var out: [NotificationState] = []
        while try statement.step() {
            out.append(
                NotificationState(
                    createdSeq: statement.int64(0), flags: UInt8(truncatingIfNeeded: statement.int64(1)),
                    snoozedUntil: statement.int64(2)))
        }
        statement.reset()
        out.sort { $0.createdSeq < $1.createdSeq }
        return out
    }

    /// Notifications whose snooze ends at or before `dueBy`, soonest first: `limit` of them
    /// after the first `offset`.
    func snoozesEnding(by dueBy: Int64, limit: Int, offset: Int) throws -> [StateKey] {
        let statement = try database.cached(
            composed:
                """
                SELECT user_no, created_seq FROM \(prefix)states WHERE snoozed_until IS NOT NULL AND snoozed_until <= ?1
                ORDER BY snoozed_until, user_no, created_seq LIMIT ?2 OFFSET ?3
                """)
        statement.bind(1, dueBy)
        statement.bind(2, Int64(limit))
        statement.bind(3, Int64(offset))
        var out: [StateKey] = []
        while try statement.step() { out.append(StateKey(userNo: statement.int64(0), createdSeq: statement.int64(1))) }
        statement.reset()
        return out
    }

    // MARK: Explicit event ids

    func seqs(forIDHash hash: Int64) throws -> [Int64] {
        let statement = try database.cached(composed: "SELECT seq FROM \(prefix)event_ids WHERE id_hash = ?1")
        statement.bind(1, hash)
        var out: [Int64] = []
        while try statement.step() { out.append(statement.int64(0)) }
        statement.reset()
        return out
    }
}
