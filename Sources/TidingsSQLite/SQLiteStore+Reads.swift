public import TidingsStore

/// One consistent read: a SQLite snapshot plus the overlay window that matches it.
struct ReadContext: LogHistory {
    let database: Database
    let snapshot: LogSnapshot
    let view: ProjectionView
    let log: LogReader
    let context: StoreContext
    /// The snapshot's head, the anchor of every event read in it (made once, not per event).
    let head: CursorAnchor

    init(database: Database, snapshot: LogSnapshot, view: ProjectionView, log: LogReader, context: StoreContext) {
        self.database = database
        self.snapshot = snapshot
        self.view = view
        self.log = log
        self.context = context
        head = snapshot.anchor
    }

    func check(at seq: Int64) throws -> UInt32 {
        try log.check(at: seq, sealedSeq: snapshot.sealedSeq)
    }

    /// The public form of a record read in this snapshot.
    func storedEvent(seq: Int64, record: LogRecord, counts: InboxCounts? = nil) throws -> StoredEvent {
        try context.storedEvent(seq: seq, record: record, database: database, counts: counts, anchor: head)
    }

    func userNumber(_ userID: String) throws -> Int64? {
        try context.users.number(userID, database: database)
    }

    /// The events of `entries`, each with its counts; with `admits`, only those whose record
    /// passes it.
    func events(entries: [StreamEntry], admits: ((RecordView) -> Bool)? = nil) throws -> [StoredEvent] {
        try events(seqs: entries.map(\.seq), counts: entries.map(\.countsAfter), admits: admits)
    }

    /// The events at `seqs` (ascending), with the counts given.
    func events(seqs: [Int64], counts: [InboxCounts]?, admits: ((RecordView) -> Bool)? = nil) throws -> [StoredEvent] {
        var events: [StoredEvent] = []
        events.reserveCapacity(seqs.count)
        var index = 0
        try log.withRecords(seqs: seqs, sealedSeq: snapshot.sealedSeq) { seq, record in
            defer { index += 1 }
            if let admits, !admits(record) { return }
            events.append(
                try context.storedEvent(
                    seq: seq, view: record, database: database, counts: counts?[index], anchor: head))
        }
        return events
    }
}

/// Which of the store's read lanes a read takes (`ReadLane`).
enum ReadKind {
    /// Bounded by its request: a page, a user's state, a stream's start.
    case short
    /// Bounded only by the log: an export run, a verification, a filtered scan.
    case scan
}

extension SQLiteStore {
    func lane(_ kind: ReadKind) -> ReadLane {
        switch kind {
        case .short: shortReads
        case .scan: scans
        }
    }

    /// Runs `body` on a reader thread of the lane inside one snapshot whose overlay window is
    /// complete.
    func withSnapshot<T: Sendable>(
        _ kind: ReadKind = .short, _ body: @escaping @Sendable (ReadContext) throws -> T
    ) async throws -> T {
        for _ in 0..<Self.snapshotAttemptsMax {
            let outcome: T? = try await lane(kind).read { database in
                try self.snapshotNow(database, body)
            }
            if let outcome { return outcome }
            // The snapshot shows events this process has not applied yet (another process
            // appended them): let the writer catch up, then read again.
            try await writer.perform { try $0.synchronizeForReaders() }
        }
        throw StoreError(.unavailable, "the store's projection does not catch up with the log; try again")
    }

    /// Bounds the retries of a read whose snapshot the overlay does not cover yet.
    static let snapshotAttemptsMax = 50

    /// Nil when the overlay does not cover the snapshot.
    func snapshotNow<T>(_ database: Database, _ body: (ReadContext) throws -> T) throws -> T? {
        try database.readSnapshot {
            let snapshot = try LogSnapshot.read(database)
            let covered = context.overlay.withLock {
                $0.committedSeq >= snapshot.headSeq && $0.retainedFrom <= snapshot.checkpointSeq
            }
            guard covered else { return nil }
            let view = ProjectionView(
                base: ProjectionBase(database: database), overlay: context.overlay, lower: snapshot.checkpointSeq,
                upper: snapshot.headSeq)
            return try body(
                ReadContext(
                    database: database, snapshot: snapshot, view: view, log: context.logReader(database),
                    context: context))
        }
    }

    // MARK: User streams

    /// A page of the user's stream after `after` (nil: from the start).
    public func userEvents(
        userID: String, after: String?, limit: Int = Limits.pageLimitDefault
    ) async throws -> EventPage {
        try Self.checkUser(userID)
        try Self.checkLimit(limit)
        return try await withSnapshot { read in
            let userNo = try read.userNumber(userID)
            let head = try userNo.map { try read.view.head(user: $0).streamSeq } ?? 0
            let position = try self.userPosition(after, userID: userID, head: head, log: read)
            guard let userNo else {
                return EventPage(
                    events: [], nextCursor: after ?? self.userCursor(userID, streamSeq: 0, anchor: read.head),
                    hasMore: false)
            }
            var entries = try read.view.entries(user: userNo, afterStreamSeq: position, limit: limit + 1)
            let hasMore = entries.count > limit
            if hasMore { entries.removeLast() }
            let events = try read.events(entries: entries)
            let next =
                events.last.map { self.cursor(of: $0, userStream: true) } ?? after
                ?? self.userCursor(userID, streamSeq: 0, anchor: read.head)
            return EventPage(events: events, nextCursor: next, hasMore: hasMore)
        }
    }

    /// The user's unread count, oldest unread notifications (at most `limit`), and head cursor.
    public func unread(userID: String, limit: Int = Limits.pageLimitDefault) async throws -> UnreadSnapshot {
        try Self.checkUser(userID)
        try Self.checkLimit(limit)
        return try await withSnapshot { read in
            guard let userNo = try read.userNumber(userID) else {
                return UnreadSnapshot(
                    counts: .zero, notifications: [], cursor: self.userCursor(userID, streamSeq: 0, anchor: read.head))
            }
            let head = try read.view.head(user: userNo)
            let unread = try read.view.stateTest(user: userNo).select(
                mask: NotificationState.unreadFlag, value: NotificationState.unreadFlag, through: .max, limit: limit)
            let records = try read.log.records(seqs: unread.map(\.createdSeq), sealedSeq: read.snapshot.sealedSeq)
            let events = try records.map { try read.storedEvent(seq: $0.seq, record: $0.record) }
            return UnreadSnapshot(
                counts: head.counts, notifications: events,
                cursor: self.userCursor(userID, streamSeq: head.streamSeq, anchor: read.head))
        }
    }

    /// The user's notifications newest first, with their state (`EventStore.notifications`).
    public func notifications(
        userID: String, before: String?, filter: NotificationListFilter, limit: Int = Limits.pageLimitDefault
    ) async throws -> NotificationList {
        try Self.checkUser(userID)
        try Self.checkLimit(limit)
        try filter.check()
        // A kind reads as far as it must to fill the page, which for a kind the user rarely has
        // is the whole stream: a scan, not a short read.
        return try await withSnapshot(filter.kind == nil ? .short : .scan) { read in
            let userNo = try read.userNumber(userID)
            let head = try userNo.map { try read.view.head(user: $0) } ?? (streamSeq: 0, counts: .zero)
            let position = try self.userPosition(before, userID: userID, head: head.streamSeq, log: read)
            var builder = NotificationListBuilder(filter: filter, limit: limit)
            if let userNo, before == nil || position > 0 {
                let states = read.view.stateTest(user: userNo)
                let test = filter.recordTest
                let selection = filter.state.selection
                if selection.value == 0 {
                    // The stream from its newest entry back, a window at a time.
                    var below = before == nil ? head.streamSeq + 1 : position
                    while !builder.isFull, below > 1 {
                        let after = max(0, below - 1 - Int64(builder.window))
                        let entries = try read.view.entries(
                            user: userNo, afterStreamSeq: after, limit: Int(below - 1 - after))
                        for event in try read.events(entries: entries, admits: test.admits).reversed() {
                            builder.offer(event, state: try states.state(createdSeq: event.seq))
                        }
                        below = after + 1
                    }
                } else {
                    // Only notifications with the flag: their rows in `states`, newest first.
                    var below = Int64.max
                    if before != nil {
                        below =
                            try read.view.entries(user: userNo, afterStreamSeq: position - 1, limit: 1).first?.seq ?? 0
                    }
                    while !builder.isFull, below > 1 {
                        let selected = try states.select(
                            mask: selection.mask, value: selection.value, before: below, limit: builder.window)
                        let byCreatedSeq = Dictionary(uniqueKeysWithValues: selected.map { ($0.createdSeq, $0) })
                        let events = try read.events(
                            seqs: selected.reversed().map(\.createdSeq), counts: nil, admits: test.admits)
                        for event in events.reversed() { builder.offer(event, state: byCreatedSeq[event.seq]!) }
                        guard selected.count == builder.window, let last = selected.last else { break }
                        below = last.createdSeq
                    }
                }
            }
            return builder.page(store: self, userID: userID, before: before, head: head, anchor: read.head)
        }
    }

    public func dueSnoozes(asOf now: Int64, limit: Int) async throws -> [DueSnooze] {
        try await withSnapshot { read in
            // The soonest `limit` of the base table's and the overlay's, in created order to read.
            let states = try read.view.snoozesEnding(by: now, limit: limit)
                .sorted { ($0.snoozedUntil, $0.createdSeq) < ($1.snoozedUntil, $1.createdSeq) }.prefix(limit)
                .sorted { $0.createdSeq < $1.createdSeq }
            return DueSnooze.of(states, createdEvents: try read.events(seqs: states.map(\.createdSeq), counts: nil))
        }
    }

    /// The user's stream head: its stream_seq and counts.
    public func userHead(userID: String) async throws -> (streamSeq: Int64, counts: InboxCounts, anchor: CursorAnchor) {
        try Self.checkUser(userID)
        return try await withSnapshot { read in
            guard let userNo = try read.userNumber(userID) else { return (0, .zero, read.head) }
            let head = try read.view.head(user: userNo)
            return (head.streamSeq, head.counts, read.head)
        }
    }

    /// The counts as of a position of the user's stream (zero at the start), for `caught_up`.
    public func counts(userID: String, atStreamSeq streamSeq: Int64) async throws -> InboxCounts {
        try Self.checkUser(userID)
        guard streamSeq > 0 else { return .zero }
        return try await withSnapshot { read in
            guard let userNo = try read.userNumber(userID) else { return .zero }
            let entries = try read.view.entries(user: userNo, afterStreamSeq: streamSeq - 1, limit: 1)
            guard let entry = entries.first, entry.streamSeq == streamSeq else {
                throw StoreError(
                    .cursorReset, "position \(streamSeq) is past the head of the stream", resetReason: .cursorAhead)
            }
            return entry.countsAfter
        }
    }

    // MARK: The all stream

    /// The newest event: its seq and check bytes.
    public func head() async throws -> CursorAnchor {
        try await withSnapshot { $0.head }
    }

    /// A page of the `all` stream after `after`, filtered.
    public func allEvents(
        after: String?, filter: EventFilter = EventFilter(), limit: Int = Limits.pageLimitDefault
    )
        async throws -> EventPage
    {
        try Self.checkLimit(limit)
        if let user = filter.userID { try Self.checkUser(user) }
        // A filtered page reads as far as the filter makes it (a type that is rare, a user with
        // few events): a scan, not a short read.
        return try await withSnapshot(filter.isEmpty ? .short : .scan) { read in
            let position = try self.allPosition(after, log: read)
            var events: [StoredEvent] = []
            try self.scanAll(read, after: position, filter: filter) { event in
                events.append(event)
                return events.count <= limit
            }
            let hasMore = events.count > limit
            if hasMore { events.removeLast() }
            let next =
                events.last.map { self.cursor(of: $0, userStream: false) } ?? after
                ?? self.allCursor(seq: 0, anchor: read.head)
            return EventPage(events: events, nextCursor: next, hasMore: hasMore)
        }
    }

    func scanAll(_ read: ReadContext, after: Int64, filter: EventFilter, _ body: (StoredEvent) throws -> Bool) throws {
        let head = read.snapshot.headSeq
        if let userID = filter.userID {
            guard let userNo = try read.userNumber(userID) else { return }
            var streamSeq: Int64 = 0
            while true {
                let entries = try read.view.entries(user: userNo, afterStreamSeq: streamSeq, limit: 256)
                guard let last = entries.last else { return }
                streamSeq = last.streamSeq
                let wanted = entries.filter { $0.seq > after }
                let records = try read.log.records(seqs: wanted.map(\.seq), sealedSeq: read.snapshot.sealedSeq)
                for entry in records where filter.matches(entry.record) {
                    let event = try read.storedEvent(seq: entry.seq, record: entry.record)
                    guard try body(event) else { return }
                }
            }
        }
        var start = after
        if let since = filter.since, start < read.snapshot.sealedSeq {
            // Timestamps never decrease along seq: skip the blocks that end before `since`.
            let statement = try read.database.cached(
                "SELECT first_seq FROM blocks WHERE last_ts >= ?1 AND first_seq + event_count - 1 > ?2 ORDER BY first_seq LIMIT 1"
            )
            statement.bind(1, since)
            statement.bind(2, after)
            if try statement.step() {
                start = max(start, statement.int64(0) - 1)
            } else {
                start = max(start, read.snapshot.sealedSeq)
            }
            statement.reset()
        }
        try read.log.scan(after: start, through: head, sealedSeq: read.snapshot.sealedSeq, typeMask: filter.typeMask) {
            entry in
            if let until = filter.until, entry.record.timestampMilliseconds >= until { return false }
            guard filter.matches(entry.record) else { return true }
            return try body(try read.storedEvent(seq: entry.seq, record: entry.record))
        }
    }
}
