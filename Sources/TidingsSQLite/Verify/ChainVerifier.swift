import TidingsStore

/// Feeds the SQLite log (sealed blocks, then the tail) to the shared chain walk in seq order.
struct ChainVerifier {
    typealias Damage = ChainWalk.Damage

    let database: Database
    let context: StoreContext
    private var walk: ChainWalk

    var previousHash: [UInt8] { walk.previousHash }
    var blocks: Int64 { walk.blocks }
    /// Called with the hash after every event (for checkpoints).
    var onEvent: ((Int64, [UInt8]) -> Void)? {
        get { walk.onEvent }
        set { walk.onEvent = newValue }
    }

    init(database: Database, context: StoreContext, startingAfter seq: Int64, previousHash: [UInt8]) {
        self.database = database
        self.context = context
        walk = ChainWalk(epoch: context.idEpoch, startingAfter: seq, previousHash: previousHash)
    }

    /// Verifies sealed blocks with first_seq >= the next seq's block, through the last block.
    mutating func verifyBlocks(progress: ((Int64) -> Void)? = nil) throws(Damage) {
        do {
            let statement = try database.prepare(
                """
                SELECT first_seq, event_count, first_ts, last_ts, type_mask, records_bytes, dictionary_id, payload,
                    checks, end_hash FROM blocks WHERE first_seq >= ?1 ORDER BY first_seq
                """)
            statement.bind(1, walk.nextSeq)
            let database = self.database
            let context = self.context
            while try statement.step() {
                let row = ChainWalk.BlockRow(
                    firstSeq: statement.int64(0), eventCount: statement.int(1), firstTimestamp: statement.int64(2),
                    lastTimestamp: statement.int64(3), typeMask: statement.int(4), checks: statement.bytes(8),
                    endHash: statement.bytes(9))
                try walk.check(
                    row,
                    records: {
                        let dictionary = try context.dictionaries.dictionary(statement.int64(6), database: database)
                        return try LZ4Decoder.decompress(
                            statement.blob(7), rawCount: statement.int(5), dictionary: dictionary)
                    },
                    userName: { try context.users.name($0, database: database) })
                progress?(walk.nextSeq - 1)
            }
        } catch let damage as Damage {
            throw damage
        } catch {
            throw Damage(seq: walk.nextSeq, problem: "the log cannot be read at seq \(walk.nextSeq): \(error)")
        }
    }

    /// Verifies tail events from the next seq on.
    mutating func verifyTail() throws(Damage) {
        do {
            let statement = try database.prepare("SELECT seq, record, hash FROM tail WHERE seq >= ?1 ORDER BY seq")
            statement.bind(1, walk.nextSeq)
            while try statement.step() {
                let seq = statement.int64(0)
                guard seq == walk.nextSeq else {
                    throw Damage(seq: walk.nextSeq, problem: "event \(walk.nextSeq) is missing from the tail")
                }
                let record: LogRecord
                do {
                    record = try LogReader.decodeTailRecord(statement.blob(1), seq: seq)
                } catch {
                    throw Damage(seq: seq, problem: "tail event \(seq) does not decode")
                }
                let hash = try walk.check(seq: seq, record: record) { [database, context] in
                    try context.users.name($0, database: database)
                }
                guard hash == statement.bytes(2) else {
                    throw Damage(seq: seq, problem: "event \(seq) does not match the hash chain")
                }
            }
        } catch let damage as Damage {
            throw damage
        } catch {
            throw Damage(seq: walk.nextSeq, problem: "the tail cannot be read at seq \(walk.nextSeq): \(error)")
        }
    }

    /// Checks the head row against what the walk found.
    func verifyHead(_ head: LogSnapshot) throws(Damage) {
        try walk.checkHead(seq: head.headSeq, hash: head.headHash)
    }
}
