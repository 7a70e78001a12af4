import Logging
import NIOCore
import PostgresNIO
public import TidingsStore

extension PostgresStore {
    /// Runs `body` in one read-only snapshot on the primary: every query inside sees the same
    /// commits, as a SQLite read transaction does. `deadline` as `PostgresServers.withConnection`.
    func withSnapshot<T: Sendable>(
        deadline: Duration? = PostgresPool.callDeadline,
        _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await servers.withConnection(deadline: deadline) { [self] connection in
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
            SELECT stream_seq, seq, unread_after FROM tidings_user_events
            WHERE user_no = \(user) AND stream_seq > \(streamSeq) ORDER BY stream_seq LIMIT \(limit)
            """, as: (Int64, Int64, Int64).self, logger: logger
        ).map { StreamEntry(streamSeq: $0.0, seq: $0.1, unreadAfter: $0.2) }
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
                seqs: entries.map(\.seq), unreadCounts: entries.map(\.unreadAfter), anchor: anchor, on: connection)
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
                    unreadCount: 0, notifications: [], cursor: userCursor(userID, streamSeq: 0, anchor: anchor))
            }
            let seqs = try await connection.rows(
                """
                SELECT created_seq FROM tidings_notifications WHERE user_no = \(user.userNo) AND unread
                ORDER BY created_seq LIMIT \(limit)
                """, as: Int64.self, logger: logger)
            let events = try await context.events(seqs: seqs, unreadCounts: nil, anchor: anchor, on: connection)
            return UnreadSnapshot(
                unreadCount: user.unread, notifications: events,
                cursor: userCursor(userID, streamSeq: user.streamSeq, anchor: anchor))
        }
    }

    public func userHead(userID: String) async throws -> (streamSeq: Int64, unreadCount: Int64, anchor: CursorAnchor) {
        try Self.checkUser(userID)
        return try await withSnapshot { [self] connection in
            let state = try await userState(userID, on: connection)
            return (state.streamSeq, state.unread, state.history.head)
        }
    }

    public func unreadCount(userID: String, atStreamSeq streamSeq: Int64) async throws -> Int64 {
        try Self.checkUser(userID)
        guard streamSeq > 0 else { return 0 }
        return try await withSnapshot { [self] connection in
            let rows = try await connection.rows(
                """
                SELECT e.unread_after FROM tidings_user_events e JOIN tidings_users u USING (user_no)
                WHERE u.user_id = \(userID) AND e.stream_seq = \(streamSeq)
                """, as: Int64.self, logger: logger)
            guard let count = rows.first else {
                throw StoreError(
                    .cursorReset, "position \(streamSeq) is past the head of the stream", resetReason: .cursorAhead)
            }
            return count
        }
    }

    public func startUserStream(userID: String, cursor: String?) async throws -> StreamStart {
        try Self.checkUser(userID)
        let state = try await withSnapshot { [self] connection in
            try await userState(userID, cursor: cursor, on: connection)
        }
        return try userStreamStart(
            userID: userID, cursor: cursor, head: (state.streamSeq, state.unread), log: state.history)
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

    public func export(after: String?, filter: EventFilter) async throws -> LogExport {
        if let user = filter.userID { try Self.checkUser(user) }
        let (position, through) = try await withSnapshot { [self] connection in
            let history = try await SnapshotHistory.read(for: after, on: connection, logger: logger)
            return (try allPosition(after, log: history), history.head.seq)
        }
        return LogExport(throughSeq: through) { [self] in
            let next = ExportCursor(
                position, writer: EnvelopeWriter(epoch: self.epoch, derivedIDs: self.context.derivedIDs))
            return {
                // Each run reads in its own short snapshot, resuming after the last seq sent.
                guard let after = next.position, after < through else { return nil }
                if filter.userID == nil {
                    return try await self.exportRun(after: after, through: through, filter: filter, next: next)
                }
                return try await self.withSnapshot { [self] connection in
                    let anchor = try await SnapshotHistory.read(for: nil, on: connection, logger: logger).head
                    var scan = LogScan(
                        context: self.context, filter: filter, after: after, through: through, anchor: anchor)
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
    /// One run of an export of the `all` stream: envelopes written from the records in place,
    /// with the ids of the users they name looked up once per run.
    fileprivate func exportRun(
        after: Int64, through: Int64, filter: EventFilter, next: ExportCursor
    ) async throws -> LogExport.Chunk? {
        try await withSnapshot { [self] connection in
            let anchor = try await SnapshotHistory.read(for: nil, on: connection, logger: logger).head
            var scan = LogScan(context: self.context, filter: filter, after: after, through: through, anchor: anchor)
            var writer = next.writer
            writer.anchor = anchor
            writer.bytes.removeAll(keepingCapacity: true)
            var count = 0
            var last = after
            var users: Set<Int64> = []
            while writer.bytes.count < self.context.options.exportRunBytes,
                let seqs = try await scan.nextSeqs(on: connection, eventsMax: 1_000, users: &users)
            {
                guard !seqs.isEmpty else { continue }
                defer { users.removeAll(keepingCapacity: true) }
                let names = try await self.context.userNames(users, on: connection)
                try await self.context.withRecords(seqs: seqs, on: connection) { seq, record in
                    try writer.append(seq: seq, record: record) { number in
                        guard let name = names[number] else {
                            throw StoreError(.internal, "the log is damaged: event \(seq) names unknown user \(number)")
                        }
                        return name
                    }
                }
                count += seqs.count
                last = seqs.last!
            }
            last = max(last, scan.scannedThrough)
            next.position = scan.finished ? nil : last
            let bytes = writer.bytes
            writer.bytes = []
            next.writer = writer
            if count == 0 { return scan.finished ? nil : LogExport.Chunk(bytes: [], lastSeq: last, events: 0) }
            return LogExport.Chunk(bytes: bytes, lastSeq: last, events: count)
        }
    }
}

/// Where one iteration of an export is, with the envelope writer it carries from run to run.
final class ExportCursor: @unchecked Sendable {
    // Touched only by the iteration that owns it, one chunk at a time.
    var position: Int64?
    var writer: EnvelopeWriter
    init(_ position: Int64, writer: EnvelopeWriter) {
        self.position = position
        self.writer = writer
    }
}
