import Logging
import NIOCore
import PostgresNIO
public import TidingsStore

extension PostgresStore {
    public func stats() async throws -> StoreStats {
        try await withSnapshot { [self] connection in
            let head = try await LogHead.read(connection, lock: false, logger: logger)
            let sizes = try await connection.rows(
                """
                SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0)::int8 FROM pg_class c
                JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind = 'r' AND c.relname LIKE 'tidings\\_%' AND n.nspname = current_schema()
                """, as: Int64.self, logger: logger)
            return StoreStats(
                events: head.seq, users: head.nextUserNo - 1, blocks: head.blocks, rawBytes: head.rawBytes,
                storedBytes: head.storedBytes, fileBytes: sizes.first ?? 0,
                head: CursorAnchor(seq: head.seq, hash: head.hash))
        }
    }

    /// Visits the block rows after `after` through `through` in seq order, a batch per query.
    func walkBlocks(
        after: Int64, through: Int64, on connection: PostgresConnection,
        _ body: (PostgresContext.BlockRow) async throws -> Void
    ) async throws {
        var next = after + 1
        while next <= through {
            let rows = try await connection.rows(
                """
                SELECT \(unescaped: PostgresContext.blockColumns) FROM tidings_blocks
                WHERE first_seq >= \(next) AND first_seq <= \(through) ORDER BY first_seq LIMIT 256
                """, as: PostgresContext.BlockRow.self, logger: logger)
            guard let last = rows.last else { return }
            for row in rows { try await body(row) }
            next = last.0 + Int64(last.1)
        }
    }

    /// Every user's name by number, as of the caller's snapshot.
    func allUserNames(on connection: PostgresConnection) async throws -> [Int64: String] {
        let rows = try await connection.rows(
            "SELECT user_no, user_id FROM tidings_users", as: (Int64, String).self, logger: logger)
        context.rememberUsers(rows)
        return Dictionary(rows, uniquingKeysWith: { first, _ in first })
    }

    // MARK: Verifying the log

    public func verifyLog(
        checkpoint: (seq: Int64, hash: [UInt8])?, progress: (@Sendable (Int64, Int64) -> Void)?
    ) async throws -> LogVerification {
        // The whole log in one snapshot, however long it takes.
        try await withSnapshot(bounded: false) { [self] connection in
            let head = try await LogHead.read(connection, lock: false, logger: logger)
            let names = try await allUserNames(on: connection)
            var walk = ChainWalk(epoch: epoch, startingAfter: 0, previousHash: HashChain.genesis)
            var checkpointHash: [UInt8]? = checkpoint?.seq == 0 ? HashChain.genesis : nil
            if let checkpoint, checkpoint.seq > 0 {
                walk.onEvent = { seq, hash in
                    if seq == checkpoint.seq { checkpointHash = hash }
                }
            }
            var damage: ChainWalk.Damage?
            do {
                // Every block, including any past the recorded head (which the walk reports).
                var next: Int64 = 1
                while true {
                    let rows = try await connection.rows(
                        """
                        SELECT first_seq, event_count, first_ts, last_ts, type_mask, checks, end_hash,
                            records_bytes, dictionary_id, payload_check, payload
                        FROM tidings_blocks WHERE first_seq >= \(next) ORDER BY first_seq LIMIT 256
                        """,
                        as: (Int64, Int32, Int64, Int64, Int32, ByteBuffer, ByteBuffer, Int32, Int64, Int64, ByteBuffer)
                            .self, logger: logger)
                    guard let last = rows.last else { break }
                    for row in rows {
                        let dictionary = try await context.dictionary(row.8, on: connection)
                        let block = ChainWalk.BlockRow(
                            firstSeq: row.0, eventCount: Int(row.1), firstTimestamp: row.2, lastTimestamp: row.3,
                            typeMask: Int(row.4), checks: row.5.bytes, endHash: row.6.bytes)
                        try walk.check(
                            block,
                            records: {
                                try row.10.readableBytesView.withUnsafeBytes { payload in
                                    try DecodedBlock.records(
                                        payload: payload, rawCount: Int(row.7), dictionary: dictionary,
                                        payloadCheck: row.9, firstSeq: row.0)
                                }
                            },
                            userName: { number in
                                guard let name = names[number] else {
                                    throw StoreError(.internal, "user number \(number) is unknown")
                                }
                                return name
                            })
                        progress?(min(block.firstSeq + Int64(block.eventCount) - 1, head.seq), head.seq)
                    }
                    next = last.0 + Int64(last.1)
                }
                try walk.checkHead(seq: head.seq, hash: head.hash)
            } catch let found as ChainWalk.Damage {
                damage = found
            }
            progress?(head.seq, head.seq)
            let ok = damage == nil
            return LogVerification(
                ok: ok, events: head.seq, blocks: walk.blocks, headSeq: head.seq,
                headHash: HashChain.hex(ok ? walk.previousHash : head.hash), firstBadSeq: damage?.seq,
                problem: damage?.problem,
                checkpointOK: checkpoint.map { $0.seq <= head.seq && checkpointHash == $0.hash })
        }
    }

    // MARK: The projection

    /// The projection computed in memory from the log through `head`, after `state`'s last seq
    /// (a new state when nil); collects client ids with their seqs.
    func rebuildState(
        _ state: inout RebuildState, ids: inout [(String, Int64)], through head: LogHead,
        on connection: PostgresConnection, progress: (@Sendable (RebuildProgress) -> Void)?
    ) async throws {
        let from = state.lastSeq
        state.reserve(events: head.seq, usersMax: head.nextUserNo - 1)
        var reported = from
        var text: [UInt8] = []
        try await walkBlocks(after: from, through: head.seq, on: connection) { row in
            let block = try await context.decode(row, on: connection)
            try block.forEachView { seq, record in
                guard seq > from, seq <= head.seq else { return seq <= head.seq }
                try state.apply(seq: seq, record: record)
                if !record.explicitID.isEmpty {
                    text.removeAll(keepingCapacity: true)
                    RecordView.appendIdentifierText(record.explicitID, to: &text)
                    ids.append((String(decoding: text, as: UTF8.self), seq))
                }
                return true
            }
            if block.lastSeq - reported >= 65_536 {
                reported = block.lastSeq
                progress?(RebuildProgress(phase: .reading, processed: block.lastSeq, total: head.seq))
            }
        }
        guard state.lastSeq == head.seq else {
            throw StoreError(
                .internal, "the log is damaged: its blocks end at seq \(state.lastSeq), its head is \(head.seq)")
        }
    }

    public func verifyProjections() async throws -> ProjectionVerification {
        try await withSnapshot(bounded: false) { [self] connection in
            let head = try await LogHead.read(connection, lock: false, logger: logger)
            var state = RebuildState(events: head.seq, usersMax: head.nextUserNo - 1, tracksKinds: true)
            var ids: [(String, Int64)] = []
            try await rebuildState(&state, ids: &ids, through: head, on: connection, progress: nil)
            let live = try await LiveProjection.load(on: connection, logger: logger)
            let names = try await allUserNames(on: connection)
            return try ProjectionComparison.compare(
                state, live: { live.user($0) },
                userName: { number in names[number] ?? "#\(number)" })
        }
    }

    public func startProjectionRebuild() throws -> RebuildJob {
        try rebuildJobState.start(now: context.options.clock) { progress in
            try await self.rebuildProjections(progress: progress)
        }
    }
}

/// The live projection of every user, read in one snapshot, for a comparison with the log.
struct LiveProjection {
    var heads: [Int64: (streamSeq: Int64, counts: InboxCounts)] = [:]
    var states: [Int64: [NotificationState]] = [:]
    var entries: [Int64: [StreamEntry]] = [:]

    static func load(on connection: PostgresConnection, logger: Logger) async throws -> LiveProjection {
        var live = LiveProjection()
        for (user, streamSeq, unread, unseen, archived) in try await connection.rows(
            "SELECT user_no, stream_seq, unread, unseen, archived FROM tidings_users",
            as: (Int64, Int64, Int64, Int64, Int64).self, logger: logger)
        {
            live.heads[user] = (streamSeq, InboxCounts(unread: unread, unseen: unseen, archived: archived))
        }
        let notifications = try await connection.query(
            """
            SELECT user_no, created_seq, flags, coalesce(snoozed_until, 0) FROM tidings_notifications
            ORDER BY user_no, created_seq
            """, logger: logger)
        for try await (user, created, flags, until) in notifications.decode((Int64, Int64, Int16, Int64).self) {
            live.states[user, default: []].append(
                NotificationState(createdSeq: created, flags: UInt8(truncatingIfNeeded: flags), snoozedUntil: until))
        }
        let sequence = try await connection.query(
            """
            SELECT user_no, stream_seq, seq, unread_after, unseen_after, archived_after FROM tidings_user_events
            ORDER BY user_no, stream_seq
            """, logger: logger)
        for try await (user, streamSeq, seq, unread, unseen, archived) in sequence.decode(
            (Int64, Int64, Int64, Int64, Int64, Int64).self)
        {
            live.entries[user, default: []].append(
                StreamEntry(
                    streamSeq: streamSeq, seq: seq,
                    countsAfter: InboxCounts(unread: unread, unseen: unseen, archived: archived)))
        }
        return live
    }

    func user(_ number: Int64) -> ProjectionComparison.LiveUser {
        ProjectionComparison.LiveUser(
            head: heads[number] ?? (0, .zero), states: states[number] ?? [], entries: entries[number] ?? [])
    }
}
