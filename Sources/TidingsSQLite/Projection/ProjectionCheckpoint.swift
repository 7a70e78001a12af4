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
    /// Rows to write into `states`, by key: each changed notification as the last event left it.
    var stateWrites: [(StateKey, NotificationState)] = []
    /// Notifications of the base tables that no longer need a row (read, seen, neither archived
    /// nor snoozed).
    var stateDeletes: [StateKey] = []
    var eventIDs: [(Int64, Int64)] = []

    /// Rows turning base tables as of `from` into the state as of the last event given.
    /// `events` are the overlay's events after `from`, in seq order.
    init(events: ArraySlice<OverlayEvent>, from: Int64, entriesPerRowMax: Int = 1_024) {
        var streams: [Int64: [StreamEntry]] = [:]
        var states: [StateKey: NotificationState] = [:]
        for event in events {
            streams[event.userNo, default: []].append(
                StreamEntry(streamSeq: event.streamSeq, seq: event.seq, countsAfter: event.countsAfter))
            if event.type == .created {
                notifications.append(
                    NotificationRow(userNo: event.userNo, id: event.notification, createdSeq: event.seq))
            }
            event.forEachChange { states[StateKey(userNo: event.userNo, createdSeq: $0.createdSeq)] = $0 }
            if let id = event.explicitID { eventIDs.append((EventIDHash.of(id), event.seq)) }
        }
        for (key, state) in states {
            if state.flags != 0 {
                stateWrites.append((key, state))
            } else if key.createdSeq <= from {
                stateDeletes.append(key)
            }
        }
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
        stateWrites.sort { ($0.0.userNo, $0.0.createdSeq) < ($1.0.userNo, $1.0.createdSeq) }
        stateDeletes.sort { ($0.userNo, $0.createdSeq) < ($1.userNo, $1.createdSeq) }
        eventIDs.sort { $0 < $1 }
    }

    /// Writes every row through `base`'s connection (inside the caller's transaction).
    func write(to base: ProjectionBase) throws {
        let database = base.database
        let prefix = base.prefix
        if !stateDeletes.isEmpty {
            let statement = try database.cached(
                composed: "DELETE FROM \(prefix)states WHERE user_no = ?1 AND created_seq = ?2")
            for key in stateDeletes {
                statement.bind(1, key.userNo)
                statement.bind(2, key.createdSeq)
                try statement.run()
            }
        }
        if !userEvents.isEmpty {
            let statement = try database.cached(
                composed:
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
                composed:
                    "INSERT INTO \(prefix)notifications (user_no, notification_id, created_seq) VALUES (?1, ?2, ?3)")
            for row in notifications {
                statement.bind(1, row.userNo)
                statement.bind(2, blob: row.id)
                statement.bind(3, row.createdSeq)
                try statement.run()
            }
        }
        if !stateWrites.isEmpty {
            let statement = try database.cached(
                composed:
                    "INSERT OR REPLACE INTO \(prefix)states (user_no, created_seq, flags, snoozed_until) VALUES (?1, ?2, ?3, ?4)"
            )
            for (key, state) in stateWrites {
                statement.bind(1, key.userNo)
                statement.bind(2, key.createdSeq)
                state.bind(to: statement)
                try statement.run()
            }
        }
        if !eventIDs.isEmpty {
            let statement = try database.cached(
                composed: "INSERT INTO \(prefix)event_ids (id_hash, seq) VALUES (?1, ?2)")
            for (hash, seq) in eventIDs {
                statement.bind(1, hash)
                statement.bind(2, seq)
                try statement.run()
            }
        }
    }
}

extension NotificationState {
    /// Binds `flags` and `snoozed_until` (NULL unless snoozed) as parameters 3 and 4.
    func bind(to statement: Statement) {
        statement.bind(3, Int64(flags))
        if isSnoozed { statement.bind(4, snoozedUntil) } else { statement.bindNull(4) }
    }
}
