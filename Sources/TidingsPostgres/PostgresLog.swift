import Logging
import NIOCore
import PostgresNIO
import Synchronization
import TidingsStore

/// What every part of an open PostgreSQL store shares: its identity, the caches of immutable
/// things (blocks, dictionaries, user names, where blocks start), and the listeners.
final class PostgresContext: Sendable {
    let epoch: UInt64
    let fanoutKey: [UInt8]
    let derivedIDs: DerivedEventID
    let options: PostgresOptions
    let logger: Logger
    let dictionaries = DictionaryCache()
    let blocks: BlockCache
    let commitFeed = CommitFeed()
    let faults = FaultReporter()
    let logAdvanced = Mutex<[@Sendable () -> Void]>([])
    let historyInDoubt = Mutex<[@Sendable () -> Void]>([])
    /// User numbers never change: names learned once are kept.
    private let userNames = Mutex<[Int64: String]>([:])
    /// The first seq of every block from the log's start through `end`, ascending: blocks are
    /// append-only, so what is known here never changes.
    private struct BlockIndex {
        var starts: [Int64] = []
        var end: Int64 = 0
    }
    private let blockIndex = Mutex(BlockIndex())

    init(epoch: UInt64, fanoutKey: [UInt8], options: PostgresOptions, logger: Logger) {
        self.epoch = epoch
        self.fanoutKey = fanoutKey
        self.options = options
        self.logger = logger
        derivedIDs = DerivedEventID(epoch: epoch)
        blocks = BlockCache(capacityBytes: options.blockCacheBytes)
    }

    /// Drops everything cached from the log. Blocks, dictionaries and user numbers never change
    /// within one history, but a failover to a standby that lacked the last commits gives the
    /// lost seqs and user numbers to other blocks and users.
    /// Counts `forgetHistory` calls: work that spans several reads (an export) notices when the
    /// log's history changed in between.
    let historyGeneration = Atomic<Int>(0)

    func forgetHistory() {
        historyGeneration.add(1, ordering: .relaxed)
        userNames.withLock { $0.removeAll() }
        blockIndex.withLock { $0 = BlockIndex() }
        blocks.removeAll()
        dictionaries.removeAll()
    }

    // MARK: Users

    func rememberUsers(_ users: some Sequence<(Int64, String)>) {
        userNames.withLock { names in
            for (number, name) in users { names[number] = name }
        }
    }

    /// The names of these user numbers, from the cache or the database.
    func userNames(_ numbers: Set<Int64>, on connection: PostgresConnection) async throws -> [Int64: String] {
        var found: [Int64: String] = [:]
        let missing: [Int64] = userNames.withLock { names in
            numbers.filter { number in
                if let name = names[number] {
                    found[number] = name
                    return false
                }
                return true
            }
        }
        if !missing.isEmpty {
            let rows = try await connection.rows(
                "SELECT user_no, user_id FROM tidings_users WHERE user_no = ANY(\(missing))", as: (Int64, String).self,
                logger: logger)
            rememberUsers(rows)
            for (number, name) in rows { found[number] = name }
        }
        return found
    }

    func userNumber(_ userID: String, on connection: PostgresConnection) async throws -> Int64? {
        let rows = try await connection.rows(
            "SELECT user_no FROM tidings_users WHERE user_id = \(userID)", as: Int64.self, logger: logger)
        if let number = rows.first { rememberUsers([(number, userID)]) }
        return rows.first
    }

    // MARK: Blocks

    /// Notes blocks this node sealed, when they follow the ones known here (the index never has
    /// holes: blocks other nodes sealed in between are read first, when needed).
    func noteBlocks(_ blocks: [(firstSeq: Int64, lastSeq: Int64)]) {
        blockIndex.withLock { index in
            for block in blocks where block.firstSeq == index.end + 1 {
                index.starts.append(block.firstSeq)
                index.end = block.lastSeq
            }
        }
    }

    /// The first seq of the block holding each of `seqs`, learning of newer blocks when needed.
    func blockStart(holding seqs: [Int64], on connection: PostgresConnection) async throws -> [Int64] {
        guard let highest = seqs.max() else { return [] }
        let end = blockIndex.withLock { $0.end }
        // Blocks continue each other: the one holding the seq right after the known ones starts
        // there (what a scan that read up to the last known block asks next).
        if seqs.count == 1, highest == end + 1 { return [highest] }
        if highest > end {
            let rows = try await connection.rows(
                "SELECT first_seq, event_count FROM tidings_blocks WHERE first_seq > \(end) ORDER BY first_seq",
                as: (Int64, Int32).self, logger: logger)
            noteBlocks(rows.map { ($0.0, $0.0 + Int64($0.1) - 1) })
        }
        return try blockIndex.withLock { index in
            try seqs.map { seq in
                guard seq >= 1, seq <= index.end else {
                    throw StoreError(.internal, "the log holds no block for seq \(seq)")
                }
                // The last start at or before seq.
                var low = 0
                var high = index.starts.count
                while low < high {
                    let middle = (low + high) / 2
                    if index.starts[middle] <= seq { low = middle + 1 } else { high = middle }
                }
                return index.starts[low - 1]
            }
        }
    }

    static let blockColumns =
        "first_seq, event_count, first_ts, type_mask, records_bytes, dictionary_id, payload_check, payload"
    typealias BlockRow = (Int64, Int32, Int64, Int32, Int32, Int64, Int64, ByteBuffer)

    /// Decompresses a block row (its payload checked first) and keeps it in the cache.
    func decode(_ row: BlockRow, on connection: PostgresConnection) async throws -> DecodedBlock {
        let block = try await decodeUncached(row, on: connection)
        blocks.insert(block)
        return block
    }

    /// Decompresses a block row (its payload checked first), leaving the cache alone: a scan of
    /// the whole log would push the blocks live reads want out of it.
    func decodeUncached(_ row: BlockRow, on connection: PostgresConnection) async throws -> DecodedBlock {
        let (firstSeq, count, firstTimestamp, typeMask, recordsBytes, dictionaryID, check, payload) = row
        let dictionary = try await dictionary(dictionaryID, on: connection)
        let records = try payload.readableBytesView.withUnsafeBytes { bytes in
            try DecodedBlock.records(
                payload: bytes, rawCount: Int(recordsBytes), dictionary: dictionary, payloadCheck: check,
                firstSeq: firstSeq)
        }
        return DecodedBlock(
            firstSeq: firstSeq, eventCount: Int(count), firstTimestamp: firstTimestamp, typeMask: Int(typeMask),
            records: records)
    }

    func dictionary(_ id: Int64, on connection: PostgresConnection) async throws -> [UInt8]? {
        guard id != 0 else { return nil }
        if let bytes = dictionaries.cached(id) { return bytes }
        let rows = try await connection.rows(
            "SELECT bytes FROM tidings_dictionaries WHERE dictionary_id = \(id)", as: ByteBuffer.self, logger: logger)
        guard let bytes = rows.first?.bytes else {
            throw StoreError(.internal, "the log is damaged: dictionary \(id) is missing")
        }
        dictionaries.remember(id, bytes)
        return bytes
    }

    /// The decoded blocks starting at `starts` (distinct), from the cache or the database.
    func blocks(startingAt starts: [Int64], on connection: PostgresConnection) async throws -> [Int64: DecodedBlock] {
        var found: [Int64: DecodedBlock] = [:]
        var missing: [Int64] = []
        for start in Set(starts) {
            if let block = blocks.block(firstSeq: start) { found[start] = block } else { missing.append(start) }
        }
        if !missing.isEmpty {
            let rows = try await connection.rows(
                "SELECT \(unescaped: Self.blockColumns) FROM tidings_blocks WHERE first_seq = ANY(\(missing))",
                as: BlockRow.self, logger: logger)
            for row in rows { found[row.0] = try await decode(row, on: connection) }
        }
        return found
    }

    /// Visits the records of `seqs` (ascending), reading each block once.
    func withRecords(
        seqs: [Int64], on connection: PostgresConnection, _ body: (Int64, RecordView) throws -> Void
    ) async throws {
        guard !seqs.isEmpty else { return }
        let starts = try await blockStart(holding: seqs, on: connection)
        let blocks = try await blocks(startingAt: starts, on: connection)
        var index = 0
        while index < seqs.count {
            let start = starts[index]
            var end = index
            while end < seqs.count && starts[end] == start { end += 1 }
            guard let block = blocks[start] else {
                throw StoreError(.internal, "the log is damaged: the block at seq \(start) is missing")
            }
            try block.withRecords(seqs: seqs[index..<end], body)
            index = end
        }
    }

    /// The public form of stored events at `seqs` (ascending), with unread counts as given;
    /// with `admits`, only those whose record passes it.
    func events(
        seqs: [Int64], counts: [InboxCounts]?, anchor: CursorAnchor, on connection: PostgresConnection,
        admits: (@Sendable (RecordView) -> Bool)? = nil
    ) async throws -> [StoredEvent] {
        while true {
            var events: [StoredEvent] = []
            events.reserveCapacity(seqs.count)
            var unknownUsers: Set<Int64> = []
            var index = 0
            try await withRecords(seqs: seqs, on: connection) { seq, view in
                defer { index += 1 }
                if let admits, !admits(view) { return }
                guard let name = cachedUserName(view.userNo) else {
                    unknownUsers.insert(view.userNo)
                    return
                }
                events.append(
                    try StoredEvent(
                        seq: seq, view: view, userID: name, derivedIDs: derivedIDs,
                        counts: counts?[index], anchor: anchor))
            }
            if unknownUsers.isEmpty { return events }
            let found = try await userNames(unknownUsers, on: connection)
            if let missing = unknownUsers.first(where: { found[$0] == nil }) {
                throw StoreError(.internal, "the log is damaged: an event names unknown user number \(missing)")
            }
        }
    }

    func cachedUserName(_ number: Int64) -> String? {
        userNames.withLock { $0[number] }
    }
}
