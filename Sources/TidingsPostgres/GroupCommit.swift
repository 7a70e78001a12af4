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
        let ahead = try await readAhead(requests.flatMap(\.events), head: head)
        let originals = try await originals(ahead.seqsByID, anchor: CursorAnchor(seq: head.seq, hash: head.hash))
        var plan = GroupPlan(
            view: ahead.view, head: head, now: context.options.clock(), originals: originals,
            derivedIDs: context.derivedIDs)
        let outcomes = requests.map { plan.apply($0) }
        return (plan, outcomes)
    }

    /// The events of the log that the group's client ids already name.
    private func originals(_ seqsByID: [String: Int64], anchor: CursorAnchor) async throws -> [String: StoredEvent] {
        guard !seqsByID.isEmpty else { return [:] }
        let seqs = Array(Set(seqsByID.values)).sorted()
        let stored = try await context.events(seqs: seqs, counts: nil, anchor: anchor, on: connection)
        let bySeq = Dictionary(stored.map { ($0.seq, $0) }, uniquingKeysWith: { first, _ in first })
        var originals: [String: StoredEvent] = [:]
        for (id, seq) in seqsByID {
            if let event = bySeq[seq], event.id == id { originals[id] = event }
        }
        return originals
    }

    /// Writes what the plan appended (blocks, projection rows, the head) and notifies every
    /// node, in one statement (`GroupWriteStatement`). Returns the new head.
    func write(_ plan: GroupPlan, startHead: LogHead) async throws -> (head: LogHead, blocks: [Block]) {
        var head = plan.head
        let blocks = try await seal(plan.pending, head: &head)
        head.nextUserNo = plan.view.nextUserNo
        head.blocks += Int64(blocks.count)
        for block in blocks {
            head.rawBytes += Int64(block.rawBytes)
            head.storedBytes += Int64(block.payload.count + block.checks.count)
        }
        let statement = GroupWriteStatement(plan: plan, blocks: blocks, head: head)
        for try await _ in try await connection.execute(statement, logger: logger) {}
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
}

/// What a group writes, in one statement of data-modifying CTEs: the blocks it sealed, the
/// projection rows it changed, the head, and the notification to every node. One round trip
/// where there were seven, prepared once per connection.
struct GroupWriteStatement: PostgresPreparedStatement {
    static let sql = """
        WITH blocks AS (
            INSERT INTO tidings_blocks (first_seq, event_count, first_ts, last_ts, type_mask, raw_bytes,
                records_bytes, dictionary_id, payload_check, checks, end_hash, payload)
            SELECT * FROM unnest($1::int8[], $2::int4[], $3::int8[], $4::int8[], $5::int4[], $6::int4[],
                $7::int4[], $8::int8[], $9::int8[], $10::bytea[], $11::bytea[], $12::bytea[])
        ), users AS (
            INSERT INTO tidings_users (user_no, user_id, stream_seq, unread, unseen, archived)
            SELECT * FROM unnest($13::int8[], $14::text[], $15::int8[], $16::int8[], $37::int8[], $38::int8[])
            ON CONFLICT (user_no) DO UPDATE SET stream_seq = EXCLUDED.stream_seq, unread = EXCLUDED.unread,
                unseen = EXCLUDED.unseen, archived = EXCLUDED.archived
        ), entries AS (
            INSERT INTO tidings_user_events (user_no, stream_seq, seq, unread_after, unseen_after, archived_after)
            SELECT * FROM unnest($17::int8[], $18::int8[], $19::int8[], $20::int8[], $39::int8[], $40::int8[])
        ), notifications AS (
            INSERT INTO tidings_notifications (user_no, notification_id, created_seq, flags, snoozed_until, kind)
            SELECT k.u, k.i, k.c, k.f, NULLIF(k.s, 0), NULLIF(k.k, '')
            FROM unnest($21::int8[], $22::bytea[], $23::int8[], $24::int2[], $41::int8[], $42::text[]) AS k(u, i, c, f, s, k)
            ON CONFLICT (user_no, notification_id) DO UPDATE SET flags = EXCLUDED.flags,
                snoozed_until = EXCLUDED.snoozed_until
        ), ids AS (
            INSERT INTO tidings_event_ids (event_id, seq) SELECT * FROM unnest($25::text[], $26::int8[])
        ), head AS (
            UPDATE tidings_head SET seq = $27, hash = $28, ts = $29, next_user_no = $30, dictionary_id = $31,
                undictionaried_bytes = $32, blocks = $33, raw_bytes = $34, stored_bytes = $35, generation = $36
            WHERE id = 1
        )
        SELECT 1::int4 FROM (SELECT pg_notify('tidings_log', $27::text)) AS notified
        """
    typealias Row = Int32

    private var bindings = PostgresBindings(capacity: 42)

    init(plan: GroupPlan, blocks: [Block], head: LogHead) {
        bindings.append(blocks.map(\.firstSeq))
        bindings.append(blocks.map { Int32($0.eventCount) })
        bindings.append(blocks.map(\.firstTimestamp))
        bindings.append(blocks.map(\.lastTimestamp))
        bindings.append(blocks.map { Int32($0.typeMask) })
        bindings.append(blocks.map { Int32($0.rawBytes) })
        bindings.append(blocks.map { Int32($0.recordsBytes) })
        bindings.append(blocks.map(\.dictionaryID))
        bindings.append(blocks.map(\.payloadCheck))
        bindings.append(blocks.map(\.checks.buffer))
        bindings.append(blocks.map(\.endHash.buffer))
        bindings.append(blocks.map(\.payload.buffer))
        let users = plan.view.users.values.filter(\.changed)
        bindings.append(users.map(\.userNo))
        bindings.append(users.map(\.userID))
        bindings.append(users.map(\.streamSeq))
        bindings.append(users.map(\.counts.unread))
        bindings.append(plan.entries.map(\.userNo))
        bindings.append(plan.entries.map(\.streamSeq))
        bindings.append(plan.entries.map(\.seq))
        bindings.append(plan.entries.map(\.countsAfter.unread))
        var notificationUsers: [Int64] = []
        var notificationIDs: [ByteBuffer] = []
        var notificationCreated: [Int64] = []
        var notificationFlags: [Int16] = []
        // Arrays of optionals do not bind: 0 and "" stand for NULL (no snooze ends at the epoch,
        // no kind is empty).
        var notificationSnoozes: [Int64] = []
        var notificationKinds: [String] = []
        for (user, notifications) in plan.view.notifications {
            for (id, notification) in notifications where notification.changed {
                notificationUsers.append(user)
                notificationIDs.append(id.buffer)
                notificationCreated.append(notification.state.createdSeq)
                notificationFlags.append(Int16(notification.state.flags))
                notificationSnoozes.append(notification.state.isSnoozed ? notification.state.snoozedUntil : 0)
                notificationKinds.append(notification.kind.map { String(decoding: $0, as: UTF8.self) } ?? "")
            }
        }
        bindings.append(notificationUsers)
        bindings.append(notificationIDs)
        bindings.append(notificationCreated)
        bindings.append(notificationFlags)
        bindings.append(plan.explicitIDs.map(\.id))
        bindings.append(plan.explicitIDs.map(\.seq))
        bindings.append(head.seq)
        bindings.append(head.hash.buffer)
        bindings.append(head.timestamp)
        bindings.append(head.nextUserNo)
        bindings.append(head.dictionaryID)
        bindings.append(head.undictionariedBytes)
        bindings.append(head.blocks)
        bindings.append(head.rawBytes)
        bindings.append(head.storedBytes)
        bindings.append(head.generation)
        bindings.append(users.map(\.counts.unseen))
        bindings.append(users.map(\.counts.archived))
        bindings.append(plan.entries.map(\.countsAfter.unseen))
        bindings.append(plan.entries.map(\.countsAfter.archived))
        bindings.append(notificationSnoozes)
        bindings.append(notificationKinds)
    }

    func makeBindings() throws -> PostgresBindings { bindings }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Int32.self) }
}
