public import TidingsStore

/// NDJSON export straight from the blocks: envelopes are written byte by byte from records read
/// in place, `data` is copied out of the transform, nothing is parsed and no event object is
/// built. This is the path of `GET /v1/events` with NDJSON, `tidings export` and replay benchmarks.
///
/// An export is read in runs: each run is one short read transaction on the scan lane that
/// writes at most `StoreOptions.exportRunBytes` of envelopes (or looks at `exportRunBlocks`
/// blocks, or `exportRunEntries` entries of one user's stream index), and
/// the next run starts after the last seq the previous one looked at. Between runs the export
/// holds no connection and no snapshot, so a client that takes an hour to read it pins nothing:
/// other reads go on, and WAL checkpoints are not held back. The log is append-only, so the
/// runs together are exactly the events of one snapshot: the one at the head when it started.

/// Where an export is between runs, with what it keeps from run to run (user names already
/// written).
struct ExportRun: Sendable {
    /// Every event through this seq has been looked at.
    var visitedSeq: Int64
    /// An export of one user's events walks that user's stream index: its position there.
    var visitedStreamSeq: Int64 = 0
    var finished = false
    var writer: EnvelopeWriter
    var chunk: LogExport.Chunk?

    init(store: SQLiteStore, afterSeq: Int64) {
        visitedSeq = afterSeq
        writer = EnvelopeWriter(epoch: store.epoch, derivedIDs: store.context.derivedIDs)
    }

    mutating func takeChunk() -> LogExport.Chunk? {
        defer { chunk = nil }
        return chunk
    }
}

extension SQLiteStore {
    /// An export of every event of the `all` stream after `after` that passes `filter`, as
    /// NDJSON envelopes with `all` cursors, through the head as it is now. Checks the cursor
    /// first (`invalid_cursor`, `cursor_reset`), so a caller can answer an error before the
    /// first byte. Reading it holds nothing between chunks (see `LogExport`).
    public func export(after: String?, filter: EventFilter = EventFilter()) async throws -> LogExport {
        if let user = filter.userID { try Self.checkUser(user) }
        let (position, head) = try await withSnapshot { read in
            (try self.allPosition(after, log: read), read.snapshot.headSeq)
        }
        return LogExport(throughSeq: head) { [self] in
            var run = ExportRun(store: self, afterSeq: position)
            return {
                while !run.finished {
                    run = try await self.read(run, through: head, filter: filter)
                    if let chunk = run.takeChunk() { return chunk }
                }
                return nil
            }
        }
    }

    /// One run of an export, in a transaction of its own on the scan lane.
    func read(_ run: ExportRun, through: Int64, filter: EventFilter) async throws -> ExportRun {
        let options = context.options
        return try await withSnapshot(.scan) { read in
            var run = run
            var events = 0
            var lastSeq: Int64 = 0
            let through = min(through, read.snapshot.headSeq)
            run.writer.anchor = read.head
            run.writer.bytes.reserveCapacity(options.exportRunBytes + Limits.eventBytesMax + 1_024)
            if let userID = filter.userID {
                try self.readUserRun(&run, read, userID: userID, through: through, filter: filter) { seq in
                    events += 1
                    lastSeq = seq
                }
            } else {
                var reachedUntil = false
                run.visitedSeq = try self.scanRecords(
                    read.database, read.snapshot, after: run.visitedSeq, through: through, filter: filter,
                    blocksMax: options.exportRunBlocks
                ) { seq, record in
                    if let until = filter.until, record.timestampMilliseconds >= until {
                        reachedUntil = true
                        return false
                    }
                    guard filter.matches(record) else { return true }
                    try run.writer.append(seq: seq, record: record) { number in
                        try self.context.users.name(number, database: read.database)
                    }
                    events += 1
                    lastSeq = seq
                    return run.writer.bytes.count < options.exportRunBytes
                }
                run.finished = reachedUntil || run.visitedSeq >= through
            }
            if events > 0 {
                run.chunk = LogExport.Chunk(bytes: run.writer.bytes, lastSeq: lastSeq, events: events)
                run.writer.bytes = []
            }
            return run
        }
    }

    /// One run of a single user's export: through the user's stream index rather than a scan
    /// of everything.
    private func readUserRun(
        _ run: inout ExportRun, _ read: ReadContext, userID: String, through: Int64, filter: EventFilter,
        written: (Int64) -> Void
    ) throws {
        guard let userNo = try read.userNumber(userID) else {
            run.finished = true
            return
        }
        let options = context.options
        let entries = try read.view.entries(
            user: userNo, afterStreamSeq: run.visitedStreamSeq, limit: options.exportRunEntries)
        let inRange = entries.prefix { $0.seq <= through }
        let wanted = inRange.filter { $0.seq > run.visitedSeq }
        // Not through the block cache: an export would push out what short reads keep there.
        let log = context.logReader(read.database, cached: false)
        let records = try log.records(seqs: wanted.map(\.seq), sealedSeq: read.snapshot.sealedSeq)
        for (entry, found) in zip(wanted, records) {
            if let until = filter.until, found.record.timestampMilliseconds >= until {
                run.finished = true
                return
            }
            if filter.matches(found.record) {
                let event = try read.storedEvent(seq: found.seq, record: found.record)
                EnvelopeJSON.append(event, cursor: cursor(of: event, userStream: false), to: &run.writer.bytes)
                run.writer.bytes.append(10)
                written(found.seq)
            }
            run.visitedStreamSeq = entry.streamSeq
            if run.writer.bytes.count >= options.exportRunBytes { return }
        }
        run.visitedStreamSeq = inRange.last?.streamSeq ?? run.visitedStreamSeq
        run.finished = inRange.count < entries.count || entries.count < options.exportRunEntries
    }

    /// Visits records in seq order in place (blocks, then the tail) after `after` through
    /// `through` (at most the snapshot's head), skipping blocks whose types or times cannot
    /// match, until `body` returns false or `blocksMax` blocks were looked at. Returns the seq
    /// through which every record was visited or skipped, to resume after.
    @discardableResult
    func scanRecords(
        _ database: Database, _ snapshot: LogSnapshot, after: Int64, through: Int64? = nil,
        filter: EventFilter = EventFilter(), blocksMax: Int = .max, _ body: (Int64, RecordView) throws -> Bool
    ) throws -> Int64 {
        let head = min(through ?? snapshot.headSeq, snapshot.headSeq)
        let sealed = snapshot.sealedSeq
        guard after < head else { return max(after, head) }
        var start = after
        if let since = filter.since, start < sealed {
            let statement = try database.cached(
                "SELECT first_seq FROM blocks WHERE last_ts >= ?1 AND first_seq + event_count - 1 > ?2 ORDER BY first_seq LIMIT 1"
            )
            statement.bind(1, since)
            statement.bind(2, after)
            start = try statement.step() ? max(start, statement.int64(0) - 1) : max(start, sealed)
            statement.reset()
        }
        var visited = min(start, head)
        let mask = filter.typeMask
        if start < sealed {
            let statement = try database.cached(
                """
                SELECT first_seq, event_count, first_ts, type_mask, records_bytes, dictionary_id, payload, payload_check
                FROM blocks
                WHERE first_seq >= COALESCE((SELECT max(first_seq) FROM blocks WHERE first_seq <= ?1), 1) AND first_seq <= ?2
                ORDER BY first_seq
                """)
            defer { statement.reset() }
            statement.bind(1, start + 1)
            statement.bind(2, min(head, sealed))
            var buffer: [UInt8] = []
            var blocks = 0
            while try statement.step() {
                let firstSeq = statement.int64(0)
                let count = statement.int(1)
                let lastInBlock = min(firstSeq + Int64(count) - 1, head)
                blocks += 1
                guard statement.int(3) & mask != 0 else {
                    visited = max(visited, lastInBlock)
                    if blocks >= blocksMax { return visited }
                    continue
                }
                let dictionary = try context.dictionaries.dictionary(statement.int64(5), database: database)
                buffer = try DecodedBlock.records(
                    payload: statement.blob(6), rawCount: statement.int(4), dictionary: dictionary,
                    payloadCheck: statement.int64(7), firstSeq: firstSeq)
                let keepGoing = try DecodedBlock.forEachView(
                    records: buffer, firstSeq: firstSeq, firstTimestamp: statement.int64(2), count: count
                ) { seq, record in
                    if seq <= start { return true }
                    if seq > head { return false }
                    visited = seq
                    return try body(seq, record)
                }
                if !keepGoing || visited >= head || blocks >= blocksMax { return visited }
            }
        }
        guard head > sealed else { return visited }
        let statement = try database.cached(
            "SELECT seq, record FROM tail WHERE seq > ?1 AND seq <= ?2 ORDER BY seq")
        defer { statement.reset() }
        statement.bind(1, max(start, sealed))
        statement.bind(2, head)
        while try statement.step() {
            let seq = statement.int64(0)
            var reader = ByteReader(statement.blob(1))
            let record: RecordView
            do {
                record = try RecordView.read(&reader, previousTimestamp: 0)
            } catch {
                throw StoreError(.internal, "the log is damaged: tail event \(seq) does not decode (\(error))")
            }
            visited = seq
            guard mask & record.type.maskBit != 0 else { continue }
            guard try body(seq, record) else { return visited }
        }
        return max(visited, head)
    }
}
