import Logging
import NIOCore
import PostgresNIO
import TidingsStore

/// Reads the `all` stream in seq order after a position through a head, a few blocks per
/// query, keeping the events a filter passes. With a user filter it follows that user's
/// stream index instead of reading every block.
struct LogScan {
    let context: PostgresContext
    let filter: EventFilter
    private(set) var position: Int64
    let through: Int64
    private(set) var finished = false
    /// Every event through here has been looked at.
    var scannedThrough: Int64 { position }
    private var userNo: Int64??
    /// The head of the snapshot the scan reads in: the anchor of its events' cursors.
    let anchor: CursorAnchor

    static let blocksPerQuery = 64

    init(context: PostgresContext, filter: EventFilter, after: Int64, through: Int64, anchor: CursorAnchor) {
        self.context = context
        self.anchor = anchor
        self.filter = filter
        position = after
        self.through = through
    }

    /// The next matching events (possibly none, when a run of blocks matched nothing); nil once
    /// the scan is past `through`.
    mutating func next(on connection: PostgresConnection, eventsMax: Int) async throws -> [StoredEvent]? {
        guard !finished, position < through else {
            finished = true
            return nil
        }
        if let userID = filter.userID { return try await nextOfUser(userID, on: connection, eventsMax: eventsMax) }
        var users: Set<Int64> = []
        guard let wanted = try await nextSeqs(on: connection, eventsMax: eventsMax, users: &users) else { return nil }
        guard !wanted.isEmpty else { return [] }
        return try await context.events(seqs: wanted, counts: nil, anchor: anchor, on: connection)
    }

    /// The seqs of the next matching events of the `all` stream (possibly none), read from a
    /// run of blocks that the context's cache then holds, adding the user numbers they name to
    /// `users`; nil once the scan is past `through`. Not for a user filter, which `next`
    /// follows through the user's stream index.
    mutating func nextSeqs(
        on connection: PostgresConnection, eventsMax: Int, users: inout Set<Int64>
    ) async throws -> [Int64]? {
        precondition(filter.userID == nil, "a user's scan follows the stream index")
        guard !finished, position < through else {
            finished = true
            return nil
        }
        var start = try await context.blockStart(holding: [position + 1], on: connection)[0]
        if let since = filter.since {
            // Timestamps never decrease along seq: skip the blocks that end before `since`.
            let rows = try await connection.rows(
                """
                SELECT first_seq FROM tidings_blocks WHERE first_seq >= \(start) AND last_ts >= \(since)
                ORDER BY first_seq LIMIT 1
                """, as: Int64.self, logger: context.logger)
            guard let first = rows.first, first <= through else {
                finished = true
                return nil
            }
            start = first
        }
        let rows = try await connection.rows(
            """
            SELECT \(unescaped: PostgresContext.blockColumns) FROM tidings_blocks
            WHERE first_seq >= \(start) AND first_seq <= \(through) ORDER BY first_seq LIMIT \(Self.blocksPerQuery)
            """, as: PostgresContext.BlockRow.self, logger: context.logger)
        guard !rows.isEmpty else {
            throw StoreError(.internal, "the log is damaged: no block holds seq \(position + 1)")
        }
        context.noteBlocks(rows.map { ($0.0, $0.0 + Int64($0.1) - 1) })
        // The matching seqs of every block fetched, made into events at once: one lookup of the
        // users they name, not one per block.
        var wanted: [Int64] = []
        for row in rows {
            let lastSeq = row.0 + Int64(row.1) - 1
            let typeMatches = Int(row.3) & filter.typeMask != 0
            if typeMatches {
                var block = context.blocks.block(firstSeq: row.0)
                if block == nil { block = try await context.decode(row, on: connection) }
                try collect(from: block!, into: &wanted, users: &users)
            }
            position = min(max(position, lastSeq), through)
            if let until = filter.until, row.2 >= until {
                finished = true
                break
            }
            if wanted.count >= eventsMax { break }
        }
        if position >= through { finished = true }
        return wanted
    }

    /// The seqs of one block's matching events after the position, through the head, and the
    /// users they name.
    private func collect(from block: DecodedBlock, into wanted: inout [Int64], users: inout Set<Int64>) throws {
        let first = max(block.firstSeq, position + 1)
        let last = min(block.lastSeq, through)
        guard first <= last else { return }
        try block.withRecords(seqs: Array(first...last)[...]) { seq, record in
            if filter.matches(record) {
                wanted.append(seq)
                users.insert(record.userNo)
            }
        }
    }

    private mutating func nextOfUser(
        _ userID: String, on connection: PostgresConnection, eventsMax: Int
    ) async throws -> [StoredEvent] {
        if userNo == nil { userNo = .some(try await context.userNumber(userID, on: connection)) }
        guard let number = userNo!, position < through else {
            finished = true
            return []
        }
        let seqs = try await connection.rows(
            """
            SELECT seq FROM tidings_user_events WHERE user_no = \(number) AND seq > \(position) AND seq <= \(through)
            ORDER BY stream_seq LIMIT 256
            """, as: Int64.self, logger: context.logger)
        guard let last = seqs.last else {
            finished = true
            return []
        }
        var events = try await context.events(seqs: seqs, counts: nil, anchor: anchor, on: connection)
        events = events.filter { event in
            filter.types.isEmpty || filter.types.contains(event.type)
        }.filter { event in
            (filter.since.map { event.timestampMilliseconds >= $0 } ?? true)
                && (filter.until.map { event.timestampMilliseconds < $0 } ?? true)
        }
        position = seqs.count < 256 ? through : last
        if position >= through { finished = true }
        return events
    }
}
