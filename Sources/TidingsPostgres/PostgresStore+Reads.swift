import Logging
import NIOCore
import PostgresNIO
import Synchronization
public import TidingsStore

extension PostgresStore {
    /// Runs `body` in one read-only snapshot on the primary: every query inside sees the same
    /// commits, as a SQLite read transaction does. `bounded` as `PostgresServers.withConnection`.
    func withSnapshot<T: Sendable>(
        bounded: Bool = true,
        _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await servers.withConnection(bounded: bounded) { [self] connection in
            try await connection.transaction(
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: context.logger, body)
        }
    }

    var logger: Logger { context.logger }

    /// The user's number and head as of the snapshot, with the log's head and the check bytes
    /// `cursor`'s anchor needs.
    func userState(
        _ userID: String, cursor: String? = nil, on connection: PostgresConnection
    ) async throws
        -> UserSnapshot
    {
        let state = try await UserSnapshot.read(userID, cursor: cursor, on: connection, logger: logger)
        if let user = state.user { context.rememberUsers([(user.userNo, userID)]) }
        return state
    }

    func entries(
        user: Int64, after streamSeq: Int64, limit: Int, on connection: PostgresConnection
    ) async throws
        -> [StreamEntry]
    {
        try await connection.rows(
            """
            SELECT stream_seq, seq, unread_after, unseen_after, archived_after FROM tidings_user_events
            WHERE user_no = \(user) AND stream_seq > \(streamSeq) ORDER BY stream_seq LIMIT \(limit)
            """, as: (Int64, Int64, Int64, Int64, Int64).self, logger: logger
        ).map {
            StreamEntry(
                streamSeq: $0.0, seq: $0.1, countsAfter: InboxCounts(unread: $0.2, unseen: $0.3, archived: $0.4))
        }
    }

    // MARK: User streams

    public func userEvents(userID: String, after: String?, limit: Int) async throws -> EventPage {
        try Self.checkUser(userID)
        try Self.checkLimit(limit)
        return try await withSnapshot { [self] connection in
            let state = try await userState(userID, cursor: after, on: connection)
            let position = try userPosition(after, userID: userID, head: state.streamSeq, log: state.history)
            let anchor = state.history.head
            guard let user = state.user else {
                return EventPage(
                    events: [], nextCursor: after ?? userCursor(userID, streamSeq: 0, anchor: anchor), hasMore: false)
            }
            var entries = try await entries(user: user.userNo, after: position, limit: limit + 1, on: connection)
            let hasMore = entries.count > limit
            if hasMore { entries.removeLast() }
            let events = try await context.events(
                seqs: entries.map(\.seq), counts: entries.map(\.countsAfter), anchor: anchor, on: connection)
            let next =
                events.last.map { cursor(of: $0, userStream: true) } ?? after
                ?? userCursor(userID, streamSeq: 0, anchor: anchor)
            return EventPage(events: events, nextCursor: next, hasMore: hasMore)
        }
    }

    public func unread(userID: String, limit: Int) async throws -> UnreadSnapshot {
        try Self.checkUser(userID)
        try Self.checkLimit(limit)
        return try await withSnapshot { [self] connection in
            let state = try await userState(userID, on: connection)
            let anchor = state.history.head
            guard let user = state.user else {
                return UnreadSnapshot(
                    counts: .zero, notifications: [], cursor: userCursor(userID, streamSeq: 0, anchor: anchor))
            }
            let seqs = try await connection.rows(
                """
                SELECT created_seq FROM tidings_notifications WHERE user_no = \(user.userNo) AND flags & 1 <> 0
                ORDER BY created_seq LIMIT \(limit)
                """, as: Int64.self, logger: logger)
            let events = try await context.events(seqs: seqs, counts: nil, anchor: anchor, on: connection)
            return UnreadSnapshot(
                counts: user.counts, notifications: events,
                cursor: userCursor(userID, streamSeq: user.streamSeq, anchor: anchor))
        }
    }

    public func notifications(
        userID: String, before: String?, filter: NotificationListFilter, limit: Int
    ) async throws -> NotificationList {
        try Self.checkUser(userID)
        try Self.checkLimit(limit)
        try filter.check()
        return try await withSnapshot { [self] connection in
            let state = try await userState(userID, cursor: before, on: connection)
            let position = try userPosition(before, userID: userID, head: state.streamSeq, log: state.history)
            let anchor = state.history.head
            var builder = NotificationListBuilder(filter: filter, limit: limit)
            let window = builder.window
            let test = filter.recordTest
            if let user = state.user, before == nil || position > 0 {
                let selection = filter.state.selection
                if selection.value == 0 {
                    // The stream from its newest entry back, a window at a time.
                    var below = before == nil ? user.streamSeq + 1 : position
                    while !builder.isFull, below > 1 {
                        let entries = try await connection.rows(
                            """
                            SELECT stream_seq, seq FROM tidings_user_events
                            WHERE user_no = \(user.userNo) AND stream_seq < \(below) ORDER BY stream_seq DESC LIMIT \(window)
                            """, as: (Int64, Int64).self, logger: logger)
                        guard let oldest = entries.last else { break }
                        let seqs = entries.reversed().map(\.1)
                        let states = try await notificationStates(user: user.userNo, seqs, on: connection)
                        let events = try await context.events(
                            seqs: seqs, counts: nil, anchor: anchor, on: connection, admits: test.admits)
                        for event in events.reversed() {
                            builder.offer(event, state: states[event.seq] ?? NotificationState(createdSeq: event.seq))
                        }
                        below = oldest.0
                    }
                } else {
                    // Only notifications with the flag, newest first (partial indexes hold them).
                    var below = Int64.max
                    if before != nil {
                        below =
                            try await connection.rows(
                                """
                                SELECT seq FROM tidings_user_events WHERE user_no = \(user.userNo) AND stream_seq = \(position)
                                """, as: Int64.self, logger: logger
                            ).first ?? 0
                    }
                    while !builder.isFull, below > 1 {
                        let rows = try await connection.rows(
                            """
                            SELECT created_seq, flags, coalesce(snoozed_until, 0) FROM tidings_notifications
                            WHERE user_no = \(user.userNo) AND \(unescaped: Self.flagCondition(selection))
                                AND created_seq < \(below) ORDER BY created_seq DESC LIMIT \(window)
                            """, as: (Int64, Int16, Int64).self, logger: logger)
                        var states: [Int64: NotificationState] = [:]
                        for (created, flags, until) in rows {
                            states[created] = NotificationState(
                                createdSeq: created, flags: UInt8(truncatingIfNeeded: flags), snoozedUntil: until)
                        }
                        let events = try await context.events(
                            seqs: rows.reversed().map(\.0), counts: nil, anchor: anchor, on: connection,
                            admits: test.admits)
                        for event in events.reversed() { builder.offer(event, state: states[event.seq]!) }
                        guard rows.count == window, let last = rows.last else { break }
                        below = last.0
                    }
                }
            }
            return builder.page(
                store: self, userID: userID, before: before, head: state.head, anchor: anchor)
        }
    }

    public func dueSnoozes(asOf now: Int64, limit: Int) async throws -> [DueSnooze] {
        try await withSnapshot { [self] connection in
            let history = try await SnapshotHistory.read(for: nil, on: connection, logger: logger)
            let states = try await connection.rows(
                """
                SELECT created_seq, snoozed_until FROM tidings_notifications
                WHERE snoozed_until IS NOT NULL AND snoozed_until <= \(now) ORDER BY snoozed_until LIMIT \(limit)
                """, as: (Int64, Int64).self, logger: logger
            ).map { NotificationState(createdSeq: $0.0, flags: NotificationState.snoozedFlag, snoozedUntil: $0.1) }
                .sorted { $0.createdSeq < $1.createdSeq }
            let events = try await context.events(
                seqs: states.map(\.createdSeq), counts: nil, anchor: history.head, on: connection)
            return DueSnooze.of(states, createdEvents: events)
        }
    }

    public func userHead(userID: String) async throws -> (streamSeq: Int64, counts: InboxCounts, anchor: CursorAnchor) {
        try Self.checkUser(userID)
        return try await withSnapshot { [self] connection in
            let state = try await userState(userID, on: connection)
            return (state.streamSeq, state.counts, state.history.head)
        }
    }

    public func counts(userID: String, atStreamSeq streamSeq: Int64) async throws -> InboxCounts {
        try Self.checkUser(userID)
        guard streamSeq > 0 else { return .zero }
        return try await withSnapshot { [self] connection in
            let rows = try await connection.rows(
                """
                SELECT e.unread_after, e.unseen_after, e.archived_after
                FROM tidings_user_events e JOIN tidings_users u USING (user_no)
                WHERE u.user_id = \(userID) AND e.stream_seq = \(streamSeq)
                """, as: (Int64, Int64, Int64).self, logger: logger)
            guard let row = rows.first else {
                throw StoreError(
                    .cursorReset, "position \(streamSeq) is past the head of the stream", resetReason: .cursorAhead)
            }
            return InboxCounts(unread: row.0, unseen: row.1, archived: row.2)
        }
    }

    /// `flags & mask = value` in SQL, for a list's state (`value` requires a flag).
    static func flagCondition(_ selection: (mask: UInt8, value: UInt8)) -> String {
        "flags & \(selection.mask) = \(selection.value)"
    }

    /// The states of the user's notifications among `seqs` (created seqs and others alike).
    func notificationStates(
        user: Int64, _ seqs: [Int64], on connection: PostgresConnection
    ) async throws -> [Int64: NotificationState] {
        var states: [Int64: NotificationState] = [:]
        for (created, flags, until) in try await connection.rows(
            """
            SELECT created_seq, flags, coalesce(snoozed_until, 0) FROM tidings_notifications
            WHERE user_no = \(user) AND created_seq = ANY(\(seqs))
            """, as: (Int64, Int16, Int64).self, logger: logger)
        {
            states[created] = NotificationState(
                createdSeq: created, flags: UInt8(truncatingIfNeeded: flags), snoozedUntil: until)
        }
        return states
    }

    public func startUserStream(userID: String, cursor: String?) async throws -> StreamStart {
        try Self.checkUser(userID)
        let state = try await withSnapshot { [self] connection in
            try await userState(userID, cursor: cursor, on: connection)
        }
        return try userStreamStart(
            userID: userID, cursor: cursor, head: state.head, log: state.history)
    }

    public func startAllStream(cursor: String?) async throws -> StreamStart {
        let history = try await servers.withConnection { [self] connection in
            try await SnapshotHistory.read(for: cursor, on: connection, logger: logger)
        }
        return try allStreamStart(cursor: cursor, log: history)
    }

    // MARK: The all stream

    public func head() async throws -> CursorAnchor {
        try await servers.withConnection { [self] connection in
            try await SnapshotHistory.read(for: nil, on: connection, logger: logger).head
        }
    }

    public func allEvents(after: String?, filter: EventFilter, limit: Int) async throws -> EventPage {
        try Self.checkLimit(limit)
        if let user = filter.userID { try Self.checkUser(user) }
        return try await withSnapshot { [self] connection in
            let history = try await SnapshotHistory.read(for: after, on: connection, logger: logger)
            let position = try allPosition(after, log: history)
            var scan = LogScan(
                context: context, filter: filter, after: position, through: history.head.seq, anchor: history.head)
            var events: [StoredEvent] = []
            while events.count <= limit,
                let more = try await scan.next(on: connection, eventsMax: limit + 1 - events.count)
            {
                events += more
            }
            let hasMore = events.count > limit
            if hasMore { events.removeLast(events.count - limit) }
            let next =
                events.last.map { cursor(of: $0, userStream: false) } ?? after
                ?? allCursor(seq: 0, anchor: history.head)
            return EventPage(events: events, nextCursor: next, hasMore: hasMore)
        }
    }

    /// Every node reads every commit here: the events of users the node does not stream are
    /// skipped before they are made, and the kept ones get their unread counts from the user
    /// stream rows (one query). No snapshot is taken: the head and the anchor check come in one
    /// query, and what is read after it is bounded by that head and never changes (blocks, user
    /// stream rows and user numbers are written once), so a snapshot's two round trips would buy
    /// nothing; a node reads here after every commit of every node.
    public func liveEvents(after: String?, users: Set<String>?, limit: Int) async throws -> LivePage {
        try Self.checkLimit(limit)
        return try await servers.withConnection { [self] connection in
            let history = try await SnapshotHistory.read(for: after, on: connection, logger: logger)
            let position = try allPosition(after, log: history)
            var scan = LogScan(
                context: context, filter: EventFilter(), after: position, through: history.head.seq,
                anchor: history.head)
            var seqs: [Int64] = []
            var numbers: Set<Int64> = []
            while seqs.count < limit,
                let more = try await scan.nextSeqs(on: connection, eventsMax: limit - seqs.count, users: &numbers)
            {
                seqs += more
            }
            guard !seqs.isEmpty else { return LivePage(events: [], through: nil, hasMore: false) }
            let names = try await context.userNames(numbers, on: connection)
            var events: [StoredEvent] = []
            var streams: (users: [Int64], seqs: [Int64]) = ([], [])
            try await context.withRecords(seqs: seqs, on: connection) { seq, record in
                guard let name = names[record.userNo] else {
                    throw StoreError(.internal, "the log is damaged: event \(seq) names unknown user \(record.userNo)")
                }
                if let users, !users.contains(name) { return }
                events.append(
                    try StoredEvent(
                        seq: seq, view: record, userID: name, derivedIDs: context.derivedIDs, counts: nil,
                        anchor: history.head))
                streams.users.append(record.userNo)
                streams.seqs.append(record.streamSeq)
            }
            if !events.isEmpty {
                let counts = try await connection.rows(
                    """
                    SELECT k.i::int8, e.unread_after, e.unseen_after, e.archived_after
                    FROM unnest(\(streams.users), \(streams.seqs)) WITH ORDINALITY AS k(user_no, stream_seq, i)
                    JOIN tidings_user_events e ON e.user_no = k.user_no AND e.stream_seq = k.stream_seq
                    """, as: (Int64, Int64, Int64, Int64).self, logger: logger)
                for (index, unread, unseen, archived) in counts {
                    events[Int(index) - 1].counts = InboxCounts(unread: unread, unseen: unseen, archived: archived)
                }
            }
            return LivePage(
                events: events, through: (scan.scannedThrough, history.head), hasMore: !scan.finished)
        }
    }

    public func export(after: String?, filter: EventFilter) async throws -> LogExport {
        if let user = filter.userID { try Self.checkUser(user) }
        let (position, through, head) = try await withSnapshot { [self] connection in
            let history = try await SnapshotHistory.read(for: after, on: connection, logger: logger)
            return (try allPosition(after, log: history), history.head.seq, history.head)
        }
        let generation = context.historyGeneration.load(ordering: .relaxed)
        return LogExport(throughSeq: through) { [self] in
            var writer = EnvelopeWriter(epoch: self.epoch, derivedIDs: self.context.derivedIDs)
            // Every cursor of the export is anchored at the head it exports through.
            writer.anchor = head
            let next = ExportCursor(position, writer: writer, generation: generation)
            return {
                guard let after = next.position, after < through else { return nil }
                if filter.userID == nil {
                    return try await self.exportRun(after: after, through: through, filter: filter, next: next)
                }
                // A user's events, through the user's stream index, each run in its own snapshot.
                return try await self.withSnapshot { [self] connection in
                    var scan = LogScan(
                        context: self.context, filter: filter, after: after, through: through, anchor: head)
                    var bytes: [UInt8] = []
                    var count = 0
                    var last = after
                    while bytes.count < self.context.options.exportRunBytes,
                        let events = try await scan.next(on: connection, eventsMax: 1_000)
                    {
                        for event in events {
                            EnvelopeJSON.append(event, cursor: self.cursor(of: event, userStream: false), to: &bytes)
                            bytes.append(UInt8(ascii: "\n"))
                        }
                        count += events.count
                        last = events.last?.seq ?? last
                    }
                    last = max(last, scan.scannedThrough)
                    next.position = scan.finished ? nil : last
                    if count == 0 { return scan.finished ? nil : LogExport.Chunk(bytes: [], lastSeq: last, events: 0) }
                    return LogExport.Chunk(bytes: bytes, lastSeq: last, events: count)
                }
            }
        }
    }
}

extension PostgresStore {
    /// Blocks one fetch of an export reads.
    static let exportBlocksPerFetch = 256

    /// One run of an export of the `all` stream: at most `exportRunBytes` of envelopes, written
    /// from the records in place. Blocks are fetched `exportBlocksPerFetch` at a time, with the
    /// names of the users they name looked up once per fetch, and kept in the export's cursor
    /// between runs; the next fetch runs while a batch is written. No snapshot is needed: blocks and user numbers never change, so a run is
    /// one query or none, where a snapshot of its own cost a run five round trips. A failover
    /// that lost commits (the node forgot its cached history) ends the export with an error.
    fileprivate func exportRun(
        after: Int64, through: Int64, filter: EventFilter, next: ExportCursor
    ) async throws -> LogExport.Chunk? {
        guard context.historyGeneration.load(ordering: .relaxed) == next.generation else {
            throw StoreError(
                .unavailable,
                "the log's history changed during this export (its database failed over); export again from the last cursor received"
            )
        }
        var writer = next.writer
        writer.bytes.removeAll(keepingCapacity: true)
        var count = 0
        var last = after
        var finished = false
        while writer.bytes.count < context.options.exportRunBytes {
            if next.pendingIndex == next.pending.count {
                // The batch fetched in the background while the last one was written, or the first.
                let batch: ExportBatch?
                if let prefetch = next.prefetch {
                    next.prefetch = nil
                    batch = try await prefetch.value
                } else {
                    let start = try await servers.withConnection { [self, last] connection in
                        try await context.blockStart(holding: [last + 1], on: connection)[0]
                    }
                    batch = try await fetchExportBatch(startingAt: start, through: through, filter: filter)
                }
                guard let batch else {
                    finished = true
                    break
                }
                next.pending = batch.blocks
                next.pendingIndex = 0
                next.names = batch.names
                if batch.nextBlock <= through {
                    next.prefetch = Task {
                        try await self.fetchExportBatch(startingAt: batch.nextBlock, through: through, filter: filter)
                    }
                }
            }
            let block = next.pending[next.pendingIndex]
            next.pendingIndex += 1
            if let until = filter.until, block.firstTimestamp >= until {
                finished = true
                break
            }
            if block.typeMask & filter.typeMask != 0 {
                let (from, to) = (max(block.firstSeq, last + 1), min(block.lastSeq, through))
                let names = next.names
                _ = try DecodedBlock.forEachView(
                    records: block.records, firstSeq: block.firstSeq, firstTimestamp: block.firstTimestamp,
                    count: block.eventCount
                ) { seq, record in
                    guard seq <= to else { return false }
                    guard seq >= from, filter.matches(record) else { return true }
                    try writer.append(seq: seq, record: record) { number in
                        guard let name = names[number] else {
                            throw StoreError(.internal, "the log is damaged: event \(seq) names unknown user \(number)")
                        }
                        return name
                    }
                    count += 1
                    return true
                }
            }
            last = max(last, min(block.lastSeq, through))
            if last >= through {
                finished = true
                break
            }
        }
        next.position = finished ? nil : last
        let bytes = writer.bytes
        writer.bytes = []
        next.writer = writer
        if count == 0 { return finished ? nil : LogExport.Chunk(bytes: [], lastSeq: last, events: 0) }
        return LogExport.Chunk(bytes: bytes, lastSeq: last, events: count)
    }

    /// Fetches and decodes up to `exportBlocksPerFetch` blocks from the one at `start`, with the
    /// names of the users they name; nil when none is left through `through`.
    fileprivate func fetchExportBatch(
        startingAt start: Int64, through: Int64, filter: EventFilter
    ) async throws -> ExportBatch? {
        guard start <= through else { return nil }
        return try await servers.withConnection { [self] connection in
            // Timestamps never decrease along seq: the blocks that end before `since` are a prefix.
            let since = filter.since ?? .min
            let rows = try await connection.rows(
                """
                SELECT \(unescaped: PostgresContext.blockColumns) FROM tidings_blocks
                WHERE first_seq >= \(start) AND first_seq <= \(through) AND last_ts >= \(since)
                ORDER BY first_seq LIMIT \(Self.exportBlocksPerFetch)
                """, as: PostgresContext.BlockRow.self, logger: logger)
            guard let lastRow = rows.last else {
                if filter.since != nil { return nil }
                throw StoreError(.internal, "the log is damaged: no block holds seq \(start)")
            }
            var blocks: [DecodedBlock] = []
            blocks.reserveCapacity(rows.count)
            var users: Set<Int64> = []
            for row in rows {
                let block = try await context.decodeUncached(row, on: connection)
                if block.typeMask & filter.typeMask != 0 {
                    try block.forEachView { _, record in
                        users.insert(record.userNo)
                        return true
                    }
                }
                blocks.append(block)
            }
            return ExportBatch(
                blocks: blocks, names: try await context.userNames(users, on: connection),
                nextBlock: lastRow.0 + Int64(lastRow.1))
        }
    }
}

/// Blocks of an export, decoded, with the names of the users they name.
struct ExportBatch: Sendable {
    var blocks: [DecodedBlock]
    var names: [Int64: String]
    /// The first seq after the batch's last block.
    var nextBlock: Int64
}

/// Where one iteration of an export is: the last seq looked at, the envelope writer it carries
/// from run to run, and the blocks fetched but not yet written.
final class ExportCursor: @unchecked Sendable {
    // Touched only by the iteration that owns it, one chunk at a time.
    var position: Int64?
    var writer: EnvelopeWriter
    /// The `historyGeneration` the export began in.
    let generation: Int
    /// The next batch, fetched while the last one is written.
    var prefetch: Task<ExportBatch?, any Error>?
    var pending: [DecodedBlock] = []
    var pendingIndex = 0
    /// The names of the users the pending blocks name.
    var names: [Int64: String] = [:]

    init(_ position: Int64, writer: EnvelopeWriter, generation: Int) {
        self.position = position
        self.writer = writer
        self.generation = generation
    }

    deinit { prefetch?.cancel() }
}
