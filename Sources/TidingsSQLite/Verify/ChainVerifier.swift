import TidingsStore

/// Walks the log in seq order recomputing the hash chain, and stops at the first event that
/// does not match: a missing or extra event, a block that does not decompress, a record that
/// does not decode, a changed byte anywhere (data, ids, user ids, timestamps), a stream_seq gap
/// or a timestamp that goes backwards.
struct ChainVerifier {
    struct Damage: Error {
        var seq: Int64
        var problem: String
    }

    let database: Database
    let context: StoreContext
    private(set) var previousHash: [UInt8]
    private(set) var nextSeq: Int64
    private(set) var blocks: Int64 = 0
    private var lastTimestamp: Int64 = 0
    /// Last stream_seq per user; only checked when verifying from the start of the log.
    private var streamSeqs: [Int64: Int64]?
    /// Called with the hash after every event (for checkpoints).
    var onEvent: ((Int64, [UInt8]) -> Void)?

    init(database: Database, context: StoreContext, startingAfter seq: Int64, previousHash: [UInt8]) {
        self.database = database
        self.context = context
        self.previousHash = previousHash
        nextSeq = seq + 1
        streamSeqs = seq == 0 ? [:] : nil
    }

    /// Verifies sealed blocks with first_seq >= `nextSeq`'s block, through the last block.
    mutating func verifyBlocks(progress: ((Int64) -> Void)? = nil) throws(Damage) {
        do {
            let statement = try database.prepare(
                """
                SELECT first_seq, event_count, first_ts, last_ts, type_mask, records_bytes, dictionary_id, payload,
                    checks, end_hash FROM blocks WHERE first_seq >= ?1 ORDER BY first_seq
                """)
            statement.bind(1, nextSeq)
            while try statement.step() {
                try verifyBlock(statement)
                progress?(nextSeq - 1)
            }
        } catch let damage as Damage {
            throw damage
        } catch {
            throw Damage(seq: nextSeq, problem: "the log cannot be read at seq \(nextSeq): \(error)")
        }
    }

    private mutating func verifyBlock(_ row: Statement) throws {
        let firstSeq = row.int64(0)
        let count = row.int(1)
        blocks += 1
        guard firstSeq == nextSeq else {
            throw firstSeq > nextSeq
                ? Damage(seq: nextSeq, problem: "events \(nextSeq)-\(firstSeq - 1) are missing from the sealed blocks")
                : Damage(seq: firstSeq, problem: "the block at seq \(firstSeq) overlaps the one before it")
        }
        let checks = row.bytes(8)
        guard count > 0, checks.count == count * Block.checkBytes else {
            throw Damage(seq: firstSeq, problem: "the block at seq \(firstSeq) has a damaged header")
        }
        let records: [UInt8]
        do {
            let dictionary = try context.dictionaries.dictionary(row.int64(6), database: database)
            records = try LZ4Decoder.decompress(row.blob(7), rawCount: row.int(5), dictionary: dictionary)
        } catch {
            throw Damage(seq: firstSeq, problem: "the block at seq \(firstSeq) does not decompress")
        }
        var typeMask = 0
        try records.withUnsafeBytes { bytes in
            var reader = ByteReader(bytes)
            var previous = row.int64(2)
            for offset in 0..<count {
                let seq = firstSeq + Int64(offset)
                let record: LogRecord
                do {
                    record = try LogRecord.decode(&reader, previousTimestamp: previous)
                } catch {
                    throw Damage(seq: seq, problem: "event \(seq) does not decode (\(error))")
                }
                previous = record.timestampMilliseconds
                typeMask |= 1 << Int(record.type.rawValue)
                let hash = try verifyEvent(seq: seq, record: record)
                guard
                    hash.prefix(Block.checkBytes).elementsEqual(
                        checks[offset * Block.checkBytes..<(offset + 1) * Block.checkBytes])
                else { throw Damage(seq: seq, problem: "event \(seq) does not match the hash chain") }
            }
            guard reader.isAtEnd else {
                throw Damage(
                    seq: firstSeq + Int64(count) - 1, problem: "the block at seq \(firstSeq) has bytes after its events"
                )
            }
            guard previous == row.int64(3), typeMask == row.int(4) else {
                throw Damage(seq: firstSeq, problem: "the block at seq \(firstSeq) has a damaged header")
            }
        }
        guard row.bytes(9) == previousHash else {
            throw Damage(seq: nextSeq - 1, problem: "the block ending at seq \(nextSeq - 1) records another chain hash")
        }
    }

    /// Verifies tail events from `nextSeq` on.
    mutating func verifyTail() throws(Damage) {
        do {
            let statement = try database.prepare("SELECT seq, record, hash FROM tail WHERE seq >= ?1 ORDER BY seq")
            statement.bind(1, nextSeq)
            while try statement.step() {
                let seq = statement.int64(0)
                guard seq == nextSeq else {
                    throw Damage(seq: nextSeq, problem: "event \(nextSeq) is missing from the tail")
                }
                let record: LogRecord
                do {
                    record = try LogReader.decodeTailRecord(statement.blob(1), seq: seq)
                } catch {
                    throw Damage(seq: seq, problem: "tail event \(seq) does not decode")
                }
                let hash = try verifyEvent(seq: seq, record: record)
                guard hash == statement.bytes(2) else {
                    throw Damage(seq: seq, problem: "event \(seq) does not match the hash chain")
                }
            }
        } catch let damage as Damage {
            throw damage
        } catch {
            throw Damage(seq: nextSeq, problem: "the tail cannot be read at seq \(nextSeq): \(error)")
        }
    }

    /// Checks the head row against what the walk found.
    func verifyHead(_ head: LogSnapshot) throws(Damage) {
        guard head.headSeq == nextSeq - 1 else {
            throw head.headSeq > nextSeq - 1
                ? Damage(seq: nextSeq, problem: "events \(nextSeq)-\(head.headSeq) are missing")
                : Damage(seq: head.headSeq + 1, problem: "events after the recorded head \(head.headSeq) are present")
        }
        guard head.headHash == previousHash else {
            throw Damage(seq: head.headSeq, problem: "the recorded head hash differs from the chain")
        }
    }

    private mutating func verifyEvent(seq: Int64, record: LogRecord) throws -> [UInt8] {
        guard record.timestampMilliseconds >= lastTimestamp else {
            throw Damage(seq: seq, problem: "event \(seq) is timestamped before the event before it")
        }
        lastTimestamp = record.timestampMilliseconds
        if streamSeqs != nil {
            let expected = (streamSeqs![record.userNo] ?? 0) + 1
            guard record.streamSeq == expected else {
                throw Damage(seq: seq, problem: "event \(seq) has stream_seq \(record.streamSeq), expected \(expected)")
            }
            streamSeqs![record.userNo] = expected
        }
        let userID: String
        let data: [UInt8]
        do {
            userID = try context.users.name(record.userNo, database: database)
            data = try record.data()
        } catch {
            throw Damage(seq: seq, problem: "event \(seq) does not decode (\(error))")
        }
        var canonical: [UInt8] = []
        canonical.reserveCapacity(data.count + 96)
        HashChain.canonicalBytes(
            seq: seq, streamSeq: record.streamSeq, timestampMilliseconds: record.timestampMilliseconds,
            type: record.type, userID: userID.utf8, id: context.idText(seq: seq, record: record), data: data,
            into: &canonical)
        let hash = HashChain.next(previous: previousHash, canonical: canonical)
        previousHash = hash
        nextSeq = seq + 1
        onEvent?(seq, hash)
        return hash
    }
}
