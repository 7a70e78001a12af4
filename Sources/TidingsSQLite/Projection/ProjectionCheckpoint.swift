import TidingsStore

/// Turns overlay events into rows of the projection's base tables: the periodic checkpoint of
/// the live projection. Rows are computed first and sorted by key, then written, so inserts
/// walk each B-tree in order. (A rebuild writes its rows with `RebuildRows`.)
struct ProjectionCheckpoint {
    struct NotificationRow {
        var userNo: Int64
        var id: [UInt8]
        var createdSeq: Int64
    }

    struct UserEventsRow {
        var userNo: Int64
        var firstStreamSeq: Int64
        var entries: [UInt8]
    }

    var userEvents: [UserEventsRow] = []
    var notifications: [NotificationRow] = []
    /// (user_no, created_seq) pairs to insert into `unread`.
    var unreadInserts: [(Int64, Int64)] = []
    /// (user_no, created_seq) pairs to delete from `unread` (explicit reads of older notifications).
    var unreadDeletes: [(Int64, Int64)] = []
    /// (user_no, bound): delete the user's unread rows created at or before bound.
    var readAllDeletes: [(Int64, Int64)] = []
    var eventIDs: [(Int64, Int64)] = []

    /// Rows turning base tables as of `from` into the state as of the last event given.
    /// `events` are the overlay's events after `from`, in seq order.
    init(events: ArraySlice<OverlayEvent>, from: Int64, entriesPerRowMax: Int = 1_024) {
        var readTargets = Set<Int64>()
        var readAllBound: [Int64: Int64] = [:]
        var streams: [Int64: [StreamEntry]] = [:]
        for event in events {
            streams[event.userNo, default: []].append(
                StreamEntry(streamSeq: event.streamSeq, seq: event.seq, unreadAfter: event.unreadAfter))
            switch event.type {
            case .created:
                notifications.append(
                    NotificationRow(userNo: event.userNo, id: event.notification, createdSeq: event.seq))
            case .read:
                guard event.target > 0 else { break }
                readTargets.insert(event.target)
                if event.target <= from { unreadDeletes.append((event.userNo, event.target)) }
            case .readAll:
                readAllBound[event.userNo] = max(readAllBound[event.userNo] ?? 0, event.target)
            }
            if let id = event.explicitID { eventIDs.append((EventIDHash.of(id), event.seq)) }
        }
        for row in notifications where !readTargets.contains(row.createdSeq) {
            if row.createdSeq > readAllBound[row.userNo] ?? 0 { unreadInserts.append((row.userNo, row.createdSeq)) }
        }
        for (user, bound) in readAllBound where min(bound, from) > 0 { readAllDeletes.append((user, min(bound, from))) }
        for (user, entries) in streams {
            var start = 0
            while start < entries.count {
                let end = min(start + entriesPerRowMax, entries.count)
                userEvents.append(
                    UserEventsRow(
                        userNo: user, firstStreamSeq: entries[start].streamSeq,
                        entries: StreamEntry.encodeRun(entries[start..<end])))
                start = end
            }
        }
        userEvents.sort { ($0.userNo, $0.firstStreamSeq) < ($1.userNo, $1.firstStreamSeq) }
        notifications.sort { $0.userNo != $1.userNo ? $0.userNo < $1.userNo : $0.id.lexicographicallyPrecedes($1.id) }
        unreadInserts.sort { $0 < $1 }
        unreadDeletes.sort { $0 < $1 }
        readAllDeletes.sort { $0 < $1 }
        eventIDs.sort { $0 < $1 }
    }

    /// Writes every row through `base`'s connection (inside the caller's transaction).
    func write(to base: ProjectionBase) throws {
        let database = base.database
        let prefix = base.prefix
        if !unreadDeletes.isEmpty {
            let statement = try database.cached("DELETE FROM \(prefix)unread WHERE user_no = ?1 AND created_seq = ?2")
            for (user, seq) in unreadDeletes {
                statement.bind(1, user)
                statement.bind(2, seq)
                try statement.run()
            }
        }
        if !readAllDeletes.isEmpty {
            let statement = try database.cached("DELETE FROM \(prefix)unread WHERE user_no = ?1 AND created_seq <= ?2")
            for (user, bound) in readAllDeletes {
                statement.bind(1, user)
                statement.bind(2, bound)
                try statement.run()
            }
        }
        if !userEvents.isEmpty {
            let statement = try database.cached(
                "INSERT INTO \(prefix)user_events (user_no, first_stream_seq, entries) VALUES (?1, ?2, ?3)")
            for row in userEvents {
                statement.bind(1, row.userNo)
                statement.bind(2, row.firstStreamSeq)
                statement.bind(3, blob: row.entries)
                try statement.run()
            }
        }
        if !notifications.isEmpty {
            let statement = try database.cached(
                "INSERT INTO \(prefix)notifications (user_no, notification_id, created_seq) VALUES (?1, ?2, ?3)")
            for row in notifications {
                statement.bind(1, row.userNo)
                statement.bind(2, blob: row.id)
                statement.bind(3, row.createdSeq)
                try statement.run()
            }
        }
        if !unreadInserts.isEmpty {
            let statement = try database.cached("INSERT INTO \(prefix)unread (user_no, created_seq) VALUES (?1, ?2)")
            for (user, seq) in unreadInserts {
                statement.bind(1, user)
                statement.bind(2, seq)
                try statement.run()
            }
        }
        if !eventIDs.isEmpty {
            let statement = try database.cached("INSERT INTO \(prefix)event_ids (id_hash, seq) VALUES (?1, ?2)")
            for (hash, seq) in eventIDs {
                statement.bind(1, hash)
                statement.bind(2, seq)
                try statement.run()
            }
        }
    }
}
