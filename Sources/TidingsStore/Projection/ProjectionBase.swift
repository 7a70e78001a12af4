/// One event of a user stream, as the per-user index keeps it.
struct StreamEntry: Equatable, Sendable {
    var streamSeq: Int64
    var seq: Int64
    var unreadAfter: Int64
}

/// The projection's base tables: the state as of the last checkpoint, in SQLite. Queries run
/// on whatever connection the caller holds, inside the caller's snapshot.
///
/// `user_events` rows hold runs of consecutive stream entries of one user, packed as varint
/// pairs (seq delta, unread count after): one row per user per checkpoint, not per event,
/// which is what keeps a durable append from touching a random page per event.
struct ProjectionBase {
    let database: Database
    var prefix: String = ""

    // MARK: Stream entries

    static func encodeEntries(_ entries: some Collection<StreamEntry>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(entries.count * 4)
        var previous: Int64 = 0
        for entry in entries {
            Varint.append(entry.seq - previous, to: &out)
            Varint.append(entry.unreadAfter, to: &out)
            previous = entry.seq
        }
        return out
    }

    static func decodeEntries(
        _ blob: UnsafeRawBufferPointer, firstStreamSeq: Int64
    ) throws(DecodeError) -> [StreamEntry] {
        var reader = ByteReader(blob)
        var out: [StreamEntry] = []
        var seq: Int64 = 0
        var streamSeq = firstStreamSeq
        while !reader.isAtEnd {
            seq += try reader.int64()
            out.append(StreamEntry(streamSeq: streamSeq, seq: seq, unreadAfter: try reader.int64()))
            streamSeq += 1
        }
        return out
    }

    /// The user's newest entry in the base tables.
    func lastEntry(user: Int64) throws -> StreamEntry? {
        let statement = try database.cached(
            "SELECT first_stream_seq, entries FROM \(prefix)user_events WHERE user_no = ?1 ORDER BY first_stream_seq DESC LIMIT 1"
        )
        statement.bind(1, user)
        defer { statement.reset() }
        guard try statement.step() else { return nil }
        return try Self.decodeEntries(statement.blob(1), firstStreamSeq: statement.int64(0)).last
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
            for entry in try Self.decodeEntries(statement.blob(1), firstStreamSeq: statement.int64(0))
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
    /// oldest first, at most `limit`.
    func unreadSeqs(user: Int64, after: Int64, through: Int64 = .max, limit: Int = .max) throws -> [Int64] {
        let statement = try database.cached(
            "SELECT created_seq FROM \(prefix)unread WHERE user_no = ?1 AND created_seq > ?2 AND created_seq <= ?3 ORDER BY created_seq"
        )
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

    /// A 64-bit FNV-1a hash of an event id: the `event_ids` key. Collisions are resolved by
    /// reading the events the hash points at.
    static func idHash(_ id: some Collection<UInt8>) -> Int64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in id {
            hash ^= UInt64(byte)
            hash = hash &* 0x0100_0000_01b3
        }
        return Int64(bitPattern: hash)
    }

    func seqs(forIDHash hash: Int64) throws -> [Int64] {
        let statement = try database.cached("SELECT seq FROM \(prefix)event_ids WHERE id_hash = ?1")
        statement.bind(1, hash)
        var out: [Int64] = []
        while try statement.step() { out.append(statement.int64(0)) }
        statement.reset()
        return out
    }
}
