import TidingsStore

/// Reads events back from blocks and the tail on one connection, inside the caller's snapshot.
struct LogReader {
    let database: Database
    let dictionaries: DictionaryCache
    let cache: BlockCache?

    /// One event read from the log, with the absolute timestamp in its record.
    struct Entry {
        var seq: Int64
        var record: LogRecord
    }

    /// The columns `decodeBlockRow` reads, in its order.
    private static let blockColumns =
        "first_seq, event_count, first_ts, type_mask, records_bytes, dictionary_id, payload, payload_check"

    private func decodeBlockRow(_ statement: Statement) throws -> DecodedBlock {
        let firstSeq = statement.int64(0)
        let dictionary = try dictionaries.dictionary(statement.int64(5), database: database)
        let records = try DecodedBlock.records(
            payload: statement.blob(6), rawCount: statement.int(4), dictionary: dictionary,
            payloadCheck: statement.int64(7), firstSeq: firstSeq)
        return DecodedBlock(
            firstSeq: firstSeq, eventCount: statement.int(1), firstTimestamp: statement.int64(2),
            typeMask: statement.int(3), records: records)
    }

    /// The sealed block holding `seq`.
    func block(containing seq: Int64) throws -> DecodedBlock {
        // One seek finds the row; SQLite reads a column only when it is asked for, so a cached
        // block costs the seek and no read of the compressed payload.
        let statement = try database.cached(
            """
            SELECT first_seq, event_count, first_ts, type_mask, records_bytes, dictionary_id, payload, payload_check
            FROM blocks WHERE first_seq <= ?1 ORDER BY first_seq DESC LIMIT 1
            """)
        statement.bind(1, seq)
        defer { statement.reset() }
        guard try statement.step() else { throw StoreError(.internal, "the log has no block holding seq \(seq)") }
        if let cached = cache?.block(firstSeq: statement.int64(0)) { return cached }
        let block = try decodeBlockRow(statement)
        guard seq <= block.lastSeq else { throw StoreError(.internal, "the log has no block holding seq \(seq)") }
        cache?.insert(block)
        return block
    }

    /// The first 4 bytes of the chain hash after `seq` (at or before the snapshot head): from
    /// the check bytes its block keeps, or the tail row's hash. Reads no payload.
    func check(at seq: Int64, sealedSeq: Int64) throws -> UInt32 {
        if seq > sealedSeq {
            let statement = try database.cached("SELECT substr(hash, 1, 4) FROM tail WHERE seq = ?1")
            statement.bind(1, seq)
            defer { statement.reset() }
            guard try statement.step() else { throw StoreError(.internal, "the log's tail lacks seq \(seq)") }
            return CursorAnchor.check(statement.bytes(0))
        }
        let statement = try database.cached(
            """
            SELECT substr(checks, (?1 - first_seq) * 4 + 1, 4) FROM blocks
            WHERE first_seq <= ?1 ORDER BY first_seq DESC LIMIT 1
            """)
        statement.bind(1, seq)
        defer { statement.reset() }
        guard try statement.step() else { throw StoreError(.internal, "the log has no block holding seq \(seq)") }
        let bytes = statement.bytes(0)
        guard bytes.count == Block.checkBytes else {
            throw StoreError(.internal, "the log has no block holding seq \(seq)")
        }
        return CursorAnchor.check(bytes)
    }

    /// Visits the records of `seqs` (ascending) in place, from blocks or the tail. Each block
    /// is walked once for all the seqs it holds.
    func withRecords(seqs: [Int64], sealedSeq: Int64, _ body: (Int64, RecordView) throws -> Void) throws {
        var index = 0
        while index < seqs.count {
            let seq = seqs[index]
            if seq > sealedSeq {
                let statement = try database.cached("SELECT record FROM tail WHERE seq = ?1")
                statement.bind(1, seq)
                defer { statement.reset() }
                guard try statement.step() else { throw StoreError(.internal, "the log's tail lacks seq \(seq)") }
                var reader = ByteReader(statement.blob(0))
                let record: RecordView
                do {
                    record = try RecordView.read(&reader, previousTimestamp: 0)
                } catch {
                    throw StoreError(.internal, "the log is damaged: tail event \(seq) does not decode (\(error))")
                }
                try body(seq, record)
                index += 1
                continue
            }
            let block = try self.block(containing: seq)
            var end = index
            while end < seqs.count, seqs[end] <= block.lastSeq { end += 1 }
            try block.withRecords(seqs: seqs[index..<end], body)
            index = end
        }
    }

    func tailRecord(seq: Int64) throws -> LogRecord {
        let statement = try database.cached("SELECT record FROM tail WHERE seq = ?1")
        statement.bind(1, seq)
        defer { statement.reset() }
        guard try statement.step() else { throw StoreError(.internal, "the log's tail lacks seq \(seq)") }
        return try Self.decodeTailRecord(statement.blob(0), seq: seq)
    }

    static func decodeTailRecord(_ bytes: UnsafeRawBufferPointer, seq: Int64) throws -> LogRecord {
        var reader = ByteReader(bytes)
        do {
            let record = try LogRecord.decode(&reader, previousTimestamp: 0)
            guard reader.isAtEnd else { throw DecodeError(reason: "trailing bytes") }
            return record
        } catch {
            throw StoreError(.internal, "the log is damaged: tail event \(seq) does not decode (\(error))")
        }
    }

    /// The records of the given seqs (ascending, all at or before the snapshot head).
    /// The compact `data` of the event at `seq`.
    func data(seq: Int64, sealedSeq: Int64) throws -> [UInt8] {
        guard let entry = try records(seqs: [seq], sealedSeq: sealedSeq).first else {
            throw StoreError(.internal, "the log has no event \(seq)")
        }
        do {
            return try entry.record.data()
        } catch {
            throw StoreError(.internal, "the log is damaged: data of event \(seq) does not decode (\(error))")
        }
    }

    func records(seqs: [Int64], sealedSeq: Int64) throws -> [Entry] {
        var out: [Entry] = []
        out.reserveCapacity(seqs.count)
        var current: DecodedBlock?
        for seq in seqs {
            if seq > sealedSeq {
                out.append(Entry(seq: seq, record: try tailRecord(seq: seq)))
                continue
            }
            if current == nil || seq < current!.firstSeq || seq > current!.lastSeq {
                current = try block(containing: seq)
            }
            do {
                out.append(Entry(seq: seq, record: try current!.record(seq: seq)))
            } catch {
                throw StoreError(.internal, "the log is damaged: event \(seq) does not decode (\(error))")
            }
        }
        return out
    }

    /// Visits events with `after < seq <= through` in order until `body` returns false. Blocks
    /// whose types do not meet `typeMask` are skipped without decompressing them.
    func scan(
        after: Int64, through: Int64, sealedSeq: Int64, typeMask: Int = EventType.allMask,
        _ body: (Entry) throws -> Bool
    ) throws {
        guard after < through else { return }
        if after < sealedSeq {
            let statement = try database.prepare(
                """
                SELECT \(Self.blockColumns) FROM blocks WHERE first_seq >= COALESCE(
                    (SELECT max(first_seq) FROM blocks WHERE first_seq <= ?1), 1) AND first_seq <= ?2
                ORDER BY first_seq
                """)
            statement.bind(1, after + 1)
            statement.bind(2, min(through, sealedSeq))
            while try statement.step() {
                guard statement.int(3) & typeMask != 0 else { continue }
                let block = try decodeBlockRow(statement)
                var keepGoing = true
                do {
                    try block.forEach { seq, record in
                        guard seq > after else { return true }
                        guard seq <= through else {
                            keepGoing = false
                            return false
                        }
                        keepGoing = try body(Entry(seq: seq, record: record))
                        return keepGoing
                    }
                } catch let error as StoreError {
                    throw error
                } catch {
                    throw StoreError(
                        .internal, "the log is damaged: block at seq \(block.firstSeq) does not decode (\(error))")
                }
                if !keepGoing { return }
            }
        }
        guard through > sealedSeq else { return }
        let statement = try database.prepare("SELECT seq, record FROM tail WHERE seq > ?1 AND seq <= ?2 ORDER BY seq")
        statement.bind(1, max(after, sealedSeq))
        statement.bind(2, through)
        while try statement.step() {
            let seq = statement.int64(0)
            let record = try Self.decodeTailRecord(statement.blob(1), seq: seq)
            guard record.type.maskBit & typeMask != 0 else { continue }
            guard try body(Entry(seq: seq, record: record)) else { return }
        }
    }
}
