import Logging
import NIOCore
import PostgresNIO
import TidingsStore

/// One group transaction on the primary: lock the head, read ahead what the group's events
/// need, decide each request in memory (`GroupPlan`), then write the blocks, the projection's
/// rows and the head, and notify every node of the new head. The caller commits.
struct GroupCommit {
    let context: PostgresContext
    let connection: PostgresConnection
    let compression: CompressionState
    var logger: Logger { context.logger }

    /// Plans every request against the locked head; returns the plan and each request's outcome.
    func plan(
        _ requests: [AppendRequest], head: LogHead
    ) async throws -> (GroupPlan, [Result<AppendResponse, any Error>]) {
        let events = requests.flatMap(\.events)
        var view = GroupView(nextUserNo: head.nextUserNo)
        // Users.
        let userIDs = Array(Set(events.map(\.userID)))
        let users = try await connection.rows(
            "SELECT user_no, user_id, stream_seq, unread FROM tidings_users WHERE user_id = ANY(\(userIDs))",
            as: (Int64, String, Int64, Int64).self, logger: logger)
        for (number, name, streamSeq, unread) in users {
            view.load(
                user: GroupView.User(userNo: number, userID: name, streamSeq: streamSeq, unread: unread, isNew: false))
        }
        context.rememberUsers(users.map { ($0.0, $0.1) })
        // Notifications the events name, and every unread one of users who read all.
        var pairUsers: [Int64] = []
        var pairIDs: [ByteBuffer] = []
        var readAllUsers: Set<Int64> = []
        for event in events {
            guard let number = view.existingUserNo(event.userID) else { continue }
            if event.type == .readAll {
                readAllUsers.insert(number)
            } else {
                pairUsers.append(number)
                pairIDs.append(event.notificationKey.buffer)
            }
        }
        if !pairUsers.isEmpty {
            let rows = try await connection.rows(
                """
                SELECT n.user_no, n.notification_id, n.created_seq, n.unread FROM tidings_notifications n
                JOIN unnest(\(pairUsers)::int8[], \(pairIDs)::bytea[]) AS k(user_no, notification_id)
                    USING (user_no, notification_id)
                """, as: (Int64, ByteBuffer, Int64, Bool).self, logger: logger)
            for (user, id, created, unread) in rows {
                view.load(userNo: user, id: id.bytes, createdSeq: created, isUnread: unread)
            }
        }
        if !readAllUsers.isEmpty {
            let numbers = Array(readAllUsers)
            let rows = try await connection.rows(
                """
                SELECT user_no, notification_id, created_seq FROM tidings_notifications
                WHERE user_no = ANY(\(numbers)) AND unread
                """, as: (Int64, ByteBuffer, Int64).self, logger: logger)
            for (user, id, created) in rows {
                view.load(userNo: user, id: id.bytes, createdSeq: created, isUnread: true)
            }
            for number in numbers { view.markUnreadComplete(userNo: number) }
        }
        let originals = try await originals(of: events, head: head)
        var plan = GroupPlan(
            view: view, head: head, now: context.options.clock(), originals: originals, derivedIDs: context.derivedIDs)
        let outcomes = requests.map { plan.apply($0) }
        return (plan, outcomes)
    }

    /// The events of the log that the group's client ids already name.
    private func originals(of events: [ValidatedEvent], head: LogHead) async throws -> [String: StoredEvent] {
        var explicit: [String] = []
        var seqsByID: [String: Int64] = [:]
        for event in events {
            guard let id = event.id else { continue }
            if let seq = context.derivedIDs.seq(of: id.utf8) {
                if seq >= 1 && seq <= head.seq { seqsByID[id] = seq }
            } else {
                explicit.append(id)
            }
        }
        if !explicit.isEmpty {
            let rows = try await connection.rows(
                "SELECT event_id, seq FROM tidings_event_ids WHERE event_id = ANY(\(Array(Set(explicit))))",
                as: (String, Int64).self, logger: logger)
            for (id, seq) in rows { seqsByID[id] = seq }
        }
        guard !seqsByID.isEmpty else { return [:] }
        let seqs = Array(Set(seqsByID.values)).sorted()
        let stored = try await context.events(seqs: seqs, unreadCounts: nil, on: connection)
        let bySeq = Dictionary(stored.map { ($0.seq, $0) }, uniquingKeysWith: { first, _ in first })
        var originals: [String: StoredEvent] = [:]
        for (id, seq) in seqsByID {
            if let event = bySeq[seq], event.id == id { originals[id] = event }
        }
        return originals
    }

    /// Writes what the plan appended: blocks, projection rows, the head. Returns the new head.
    func write(_ plan: GroupPlan, startHead: LogHead) async throws -> (head: LogHead, blocks: [Block]) {
        var head = plan.head
        let blocks = try await seal(plan.pending, head: &head)
        try await insert(blocks)
        try await writeProjection(plan)
        head.nextUserNo = plan.view.nextUserNo
        head.blocks += Int64(blocks.count)
        for block in blocks {
            head.rawBytes += Int64(block.rawBytes)
            head.storedBytes += Int64(block.payload.count + block.checks.count)
        }
        try await head.write(connection, logger: logger)
        try await connection.run("SELECT pg_notify('tidings_log', \(String(head.seq)))", logger: logger)
        return (head, blocks)
    }

    /// Seals the group's events into blocks of about the target size, making the store's
    /// dictionary once its first 64 KiB of records are in.
    private func seal(_ events: [PendingEvent], head: inout LogHead) async throws -> [Block] {
        var blocks: [Block] = []
        var start = 0
        var bytes = 0
        var compressor = try await compression.compressor(for: head, on: connection, context: context)
        let target = context.options.blockTargetBytes
        for index in events.indices {
            bytes += events[index].record.transformedData.count + 12
            guard bytes >= target || index == events.count - 1 else { continue }
            if head.dictionaryID == 0
                && head.undictionariedBytes + Int64(bytes) >= Int64(CompressionState.dictionaryBytes)
            {
                compressor = try await compression.makeDictionary(
                    upcoming: events[start...], head: &head, on: connection, context: context)
            }
            let block = Block.seal(
                events[start...index], compressor: compressor.compressor, dictionaryID: head.dictionaryID)
            if head.dictionaryID == 0 { head.undictionariedBytes += Int64(block.recordsBytes) }
            blocks.append(block)
            start = index + 1
            bytes = 0
        }
        return blocks
    }

    private func insert(_ blocks: [Block]) async throws {
        guard !blocks.isEmpty else { return }
        let firstSeqs = blocks.map(\.firstSeq)
        let counts = blocks.map { Int32($0.eventCount) }
        let firstTimestamps = blocks.map(\.firstTimestamp)
        let lastTimestamps = blocks.map(\.lastTimestamp)
        let typeMasks = blocks.map { Int32($0.typeMask) }
        let rawBytes = blocks.map { Int32($0.rawBytes) }
        let recordsBytes = blocks.map { Int32($0.recordsBytes) }
        let dictionaries = blocks.map(\.dictionaryID)
        let checksums = blocks.map(\.payloadCheck)
        let checks = blocks.map(\.checks.buffer)
        let endHashes = blocks.map(\.endHash.buffer)
        let payloads = blocks.map(\.payload.buffer)
        try await connection.run(
            """
            INSERT INTO tidings_blocks (first_seq, event_count, first_ts, last_ts, type_mask, raw_bytes,
                records_bytes, dictionary_id, payload_check, checks, end_hash, payload)
            SELECT * FROM unnest(\(firstSeqs)::int8[], \(counts)::int4[], \(firstTimestamps)::int8[],
                \(lastTimestamps)::int8[], \(typeMasks)::int4[], \(rawBytes)::int4[], \(recordsBytes)::int4[],
                \(dictionaries)::int8[], \(checksums)::int8[], \(checks)::bytea[], \(endHashes)::bytea[],
                \(payloads)::bytea[])
            """, logger: logger)
    }

    private func writeProjection(_ plan: GroupPlan) async throws {
        let changedUsers = plan.view.users.values.filter(\.changed)
        if !changedUsers.isEmpty {
            try await connection.run(
                """
                INSERT INTO tidings_users (user_no, user_id, stream_seq, unread)
                SELECT * FROM unnest(\(changedUsers.map(\.userNo))::int8[], \(changedUsers.map(\.userID))::text[],
                    \(changedUsers.map(\.streamSeq))::int8[], \(changedUsers.map(\.unread))::int8[])
                ON CONFLICT (user_no) DO UPDATE SET stream_seq = EXCLUDED.stream_seq, unread = EXCLUDED.unread
                """, logger: logger)
        }
        if !plan.entries.isEmpty {
            try await connection.run(
                """
                INSERT INTO tidings_user_events (user_no, stream_seq, seq, unread_after)
                SELECT * FROM unnest(\(plan.entries.map(\.userNo))::int8[], \(plan.entries.map(\.streamSeq))::int8[],
                    \(plan.entries.map(\.seq))::int8[], \(plan.entries.map(\.unreadAfter))::int8[])
                """, logger: logger)
        }
        var users: [Int64] = []
        var ids: [ByteBuffer] = []
        var created: [Int64] = []
        var unread: [Bool] = []
        for (user, notifications) in plan.view.notifications {
            for (id, state) in notifications where state.changed {
                users.append(user)
                ids.append(id.buffer)
                created.append(state.createdSeq)
                unread.append(state.isUnread)
            }
        }
        if !users.isEmpty {
            try await connection.run(
                """
                INSERT INTO tidings_notifications (user_no, notification_id, created_seq, unread)
                SELECT * FROM unnest(\(users)::int8[], \(ids)::bytea[], \(created)::int8[], \(unread)::bool[])
                ON CONFLICT (user_no, notification_id) DO UPDATE SET unread = EXCLUDED.unread
                """, logger: logger)
        }
        if !plan.explicitIDs.isEmpty {
            try await connection.run(
                """
                INSERT INTO tidings_event_ids (event_id, seq)
                SELECT * FROM unnest(\(plan.explicitIDs.map(\.id))::text[], \(plan.explicitIDs.map(\.seq))::int8[])
                """, logger: logger)
        }
    }
}
