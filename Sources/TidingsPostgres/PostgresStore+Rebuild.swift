import Logging
import NIOCore
import PostgresNIO
public import TidingsStore

/// The online rebuild: the projection is computed from the log into tables beside the live
/// ones while appends go on, then the appends made meanwhile are applied and the new tables
/// swapped in, all in one transaction that holds the head (appends wait only for that step).
extension PostgresStore {
    static let shadowPrefix = "tidings_rebuild_"
    static let rowsPerStatement = 20_000

    public func rebuildProjections(progress: (@Sendable (RebuildProgress) -> Void)?) async throws {
        // One connection for the whole rebuild (it holds the advisory lock), however long it takes.
        try await servers.withConnection(bounded: false) { [self] connection in
            let locked = try await connection.rows(
                "SELECT pg_try_advisory_lock(\(PostgresSchema.rebuildLock))", as: Bool.self, logger: logger)
            guard locked.first == true else {
                throw StoreError.conflict("a projection rebuild is already running (on this node or another)")
            }
            do {
                try await rebuild(on: connection, progress: progress)
                try await connection.run("SELECT pg_advisory_unlock(\(PostgresSchema.rebuildLock))", logger: logger)
            } catch {
                try? await connection.run("ROLLBACK", logger: logger)
                try? await connection.run("SELECT pg_advisory_unlock(\(PostgresSchema.rebuildLock))", logger: logger)
                throw error
            }
        }
    }

    private func rebuild(
        on connection: PostgresConnection, progress: (@Sendable (RebuildProgress) -> Void)?
    )
        async throws
    {
        // Read the log as of one head, without holding it.
        let (start, state, ids, names) = try await connection.transaction(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: logger
        ) { connection in
            let head = try await LogHead.read(connection, lock: false, logger: logger)
            var state = RebuildState(events: head.seq, usersMax: head.nextUserNo - 1, tracksKinds: true)
            var ids: [(String, Int64)] = []
            try await rebuildState(&state, ids: &ids, through: head, on: connection, progress: progress)
            progress?(RebuildProgress(phase: .reading, processed: head.seq, total: head.seq))
            return (head, state, ids, try await allUserNames(on: connection))
        }
        for statement in PostgresSchema.projectionTables {
            try await connection.run("DROP TABLE IF EXISTS \(unescaped: Self.shadowPrefix + statement)", logger: logger)
        }
        for statement in PostgresSchema.projectionStatements(prefix: Self.shadowPrefix) {
            try await connection.run(PostgresQuery(unsafeSQL: statement), logger: logger)
        }
        var rows = RebuildRows(state: state, names: names)
        let total = Int64(rows.count(users: Array(state.userNumbers)) + ids.count)
        var written: Int64 = 0
        try await rows.write(users: Array(state.userNumbers), on: connection, logger: logger) { count in
            written += Int64(count)
            progress?(RebuildProgress(phase: .writing, processed: written, total: total))
        }
        try await RebuildRows.writeIDs(ids, on: connection, logger: logger)
        progress?(RebuildProgress(phase: .writing, processed: total, total: total))
        // Catch up and swap, holding the head.
        try await connection.transaction(logger: logger) { connection in
            let head = try await LogHead.read(connection, lock: true, logger: logger)
            var state = state
            var newIDs: [(String, Int64)] = []
            try await rebuildState(&state, ids: &newIDs, through: head, on: connection, progress: nil)
            // As on SQLite, the swap counts the events the new projection holds.
            progress?(RebuildProgress(phase: .swapping, processed: start.seq, total: head.seq))
            if head.seq > start.seq {
                // The users with events appended since the first read get their rows anew.
                let users = state.userNumbers.filter { (state.users[Int($0)].entries.last?.seq ?? 0) > start.seq }
                let moved = try await connection.rows(
                    "SELECT user_no, user_id FROM tidings_users WHERE user_no = ANY(\(users))",
                    as: (Int64, String).self, logger: logger)
                var names = names
                for (number, name) in moved { names[number] = name }
                for table in ["users", "user_events", "notifications"] {
                    try await connection.run(
                        "DELETE FROM \(unescaped: Self.shadowPrefix + table) WHERE user_no = ANY(\(users))",
                        logger: logger)
                }
                var rows = RebuildRows(state: state, names: names)
                try await rows.write(users: users.sorted(), on: connection, logger: logger) { _ in }
                try await RebuildRows.writeIDs(newIDs, on: connection, logger: logger)
            }
            try await swap(on: connection)
            var updated = head
            updated.generation += 1
            try await updated.write(connection, logger: logger)
            progress?(RebuildProgress(phase: .swapping, processed: head.seq, total: head.seq))
        }
    }

    /// Replaces the live projection tables with the rebuilt ones, renaming their indexes too so
    /// the next rebuild's names are free.
    private func swap(on connection: PostgresConnection) async throws {
        let live = PostgresSchema.projectionTables.map { "tidings_" + $0 }
        try await connection.run("DROP TABLE \(unescaped: live.joined(separator: ", "))", logger: logger)
        for table in PostgresSchema.projectionTables {
            try await connection.run(
                "ALTER TABLE \(unescaped: Self.shadowPrefix + table) RENAME TO \(unescaped: "tidings_" + table)",
                logger: logger)
        }
        let indexes = try await connection.rows(
            """
            SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'i' AND c.relname LIKE 'tidings\\_rebuild\\_%' AND n.nspname = current_schema()
            """, as: String.self, logger: logger)
        for index in indexes {
            let renamed = "tidings_" + index.dropFirst(Self.shadowPrefix.count)
            try await connection.run("ALTER INDEX \(unescaped: index) RENAME TO \(unescaped: renamed)", logger: logger)
        }
    }
}

/// The rows of a rebuilt projection, written in statements of many rows each.
struct RebuildRows {
    let state: RebuildState
    let names: [Int64: String]

    func count(users: [Int64]) -> Int {
        users.reduce(0) { total, user in
            total + 1 + state.users[Int(user)].entries.count + state.users[Int(user)].created.count
        }
    }

    /// Writes the rows of `users` into the shadow tables, reporting rows written.
    mutating func write(
        users: [Int64], on connection: PostgresConnection, logger: Logger, progress: (Int) -> Void
    ) async throws {
        var numbers: [Int64] = []
        var userIDs: [String] = []
        var heads: [Int64] = []
        var userCounts: ([Int64], [Int64], [Int64]) = ([], [], [])
        var entryUsers: [Int64] = []
        var streamSeqs: [Int64] = []
        var seqs: [Int64] = []
        var entryCounts: ([Int64], [Int64], [Int64]) = ([], [], [])
        var notificationUsers: [Int64] = []
        var notificationIDs: [ByteBuffer] = []
        var created: [Int64] = []
        var flags: [Int16] = []
        // 0 and "" stand for NULL, as in the group's write.
        var snoozes: [Int64] = []
        var kinds: [String] = []
        let prefix = PostgresStore.shadowPrefix
        func flush(force: Bool) async throws {
            if !numbers.isEmpty && (force || numbers.count >= PostgresStore.rowsPerStatement) {
                try await connection.run(
                    """
                    INSERT INTO \(unescaped: prefix)users (user_no, user_id, stream_seq, unread, unseen, archived)
                    SELECT * FROM unnest(\(numbers)::int8[], \(userIDs)::text[], \(heads)::int8[],
                        \(userCounts.0)::int8[], \(userCounts.1)::int8[], \(userCounts.2)::int8[])
                    """, logger: logger)
                progress(numbers.count)
                numbers.removeAll(keepingCapacity: true)
                userIDs.removeAll(keepingCapacity: true)
                heads.removeAll(keepingCapacity: true)
                userCounts = ([], [], [])
            }
            if !entryUsers.isEmpty && (force || entryUsers.count >= PostgresStore.rowsPerStatement) {
                try await connection.run(
                    """
                    INSERT INTO \(unescaped: prefix)user_events (user_no, stream_seq, seq, unread_after, unseen_after,
                        archived_after)
                    SELECT * FROM unnest(\(entryUsers)::int8[], \(streamSeqs)::int8[], \(seqs)::int8[],
                        \(entryCounts.0)::int8[], \(entryCounts.1)::int8[], \(entryCounts.2)::int8[])
                    """, logger: logger)
                progress(entryUsers.count)
                entryUsers.removeAll(keepingCapacity: true)
                streamSeqs.removeAll(keepingCapacity: true)
                seqs.removeAll(keepingCapacity: true)
                entryCounts = ([], [], [])
            }
            if !notificationUsers.isEmpty && (force || notificationUsers.count >= PostgresStore.rowsPerStatement) {
                try await connection.run(
                    """
                    INSERT INTO \(unescaped: prefix)notifications (user_no, notification_id, created_seq, flags,
                        snoozed_until, kind)
                    SELECT k.u, k.i, k.c, k.f, NULLIF(k.s, 0), NULLIF(k.k, '')
                    FROM unnest(\(notificationUsers)::int8[], \(notificationIDs)::bytea[], \(created)::int8[],
                        \(flags)::int2[], \(snoozes)::int8[], \(kinds)::text[]) AS k(u, i, c, f, s, k)
                    """, logger: logger)
                progress(notificationUsers.count)
                notificationUsers.removeAll(keepingCapacity: true)
                notificationIDs.removeAll(keepingCapacity: true)
                created.removeAll(keepingCapacity: true)
                flags.removeAll(keepingCapacity: true)
                snoozes.removeAll(keepingCapacity: true)
                kinds.removeAll(keepingCapacity: true)
            }
        }
        for user in users {
            guard let name = names[user] else {
                throw StoreError(.internal, "the log names user number \(user), which has no user row")
            }
            let head = state.head(user: user)
            numbers.append(user)
            userIDs.append(name)
            heads.append(head.streamSeq)
            userCounts.0.append(head.counts.unread)
            userCounts.1.append(head.counts.unseen)
            userCounts.2.append(head.counts.archived)
            for entry in state.users[Int(user)].entries {
                entryUsers.append(user)
                streamSeqs.append(entry.streamSeq)
                seqs.append(entry.seq)
                entryCounts.0.append(entry.countsAfter.unread)
                entryCounts.1.append(entry.countsAfter.unseen)
                entryCounts.2.append(entry.countsAfter.archived)
            }
            for (seq, id) in state.users[Int(user)].created {
                let notification = state.state(seq)
                notificationUsers.append(user)
                notificationIDs.append(id.withBytes { ByteBuffer(bytes: $0) })
                created.append(seq)
                flags.append(Int16(notification.flags))
                snoozes.append(notification.isSnoozed ? notification.snoozedUntil : 0)
                kinds.append(state.kind(createdSeq: seq).map { String(decoding: $0, as: UTF8.self) } ?? "")
            }
            try await flush(force: false)
        }
        try await flush(force: true)
    }

    static func writeIDs(_ ids: [(String, Int64)], on connection: PostgresConnection, logger: Logger) async throws {
        var start = 0
        while start < ids.count {
            let chunk = ids[start..<min(start + PostgresStore.rowsPerStatement, ids.count)]
            try await connection.run(
                """
                INSERT INTO \(unescaped: PostgresStore.shadowPrefix)event_ids (event_id, seq)
                SELECT * FROM unnest(\(chunk.map(\.0))::text[], \(chunk.map(\.1))::int8[])
                """, logger: logger)
            start += chunk.count
        }
    }
}
