/// NDJSON export straight from the blocks: envelopes are written byte by byte from records read
/// in place, `data` is copied out of the transform, nothing is parsed and no event object is
/// built. This is the path of `GET /v1/events` with NDJSON, `tidings export` and replay benchmarks.
extension Store {
    /// Chunks handed to the export's consumer.
    public static let exportChunkBytes = 64 * 1024

    /// Writes every event of the `all` stream after `after` that passes `filter` as NDJSON
    /// envelopes (`all` cursors), handing chunks of about 64 KiB to `body` on a reader thread,
    /// with the seq of the chunk's last event; `body` returns false to stop. Memory stays
    /// bounded whatever the log's length. Returns the number of events written.
    @discardableResult
    public func exportNDJSON(
        after: String?, filter: EventFilter = EventFilter(),
        _ body: @escaping @Sendable (_ chunk: [UInt8], _ lastSeq: Int64) throws -> Bool
    ) async throws -> Int {
        if let user = filter.userID { try Self.checkUser(user) }
        return try await withSnapshot { read in
            let position = try self.allPosition(after, head: read.snapshot.headSeq)
            var writer = EnvelopeWriter(store: self, database: read.database)
            var count = 0
            var lastSeq: Int64 = 0
            var stopped = false
            func written(_ seq: Int64) throws -> Bool {
                count += 1
                lastSeq = seq
                guard writer.bytes.count >= Self.exportChunkBytes else { return true }
                defer { writer.bytes.removeAll(keepingCapacity: true) }
                stopped = try !body(writer.bytes, seq)
                return !stopped
            }
            if filter.userID != nil {
                // One user's events come through the stream index, not a scan of everything.
                try self.scanAll(read, after: position, filter: filter, cached: false) { event in
                    EnvelopeJSON.append(event, cursor: self.allCursor(seq: event.seq), to: &writer.bytes)
                    writer.bytes.append(10)
                    return try written(event.seq)
                }
            } else {
                try self.scanRecords(read.database, read.snapshot, after: position, filter: filter) { seq, record in
                    if let until = filter.until, record.timestampMilliseconds >= until { return false }
                    guard filter.matches(record) else { return true }
                    try writer.append(seq: seq, record: record)
                    return try written(seq)
                }
            }
            if !stopped && !writer.bytes.isEmpty { _ = try body(writer.bytes, lastSeq) }
            return count
        }
    }

    /// Visits records in seq order in place (blocks, then the tail), skipping blocks whose
    /// types or times cannot match.
    func scanRecords(
        _ database: Database, _ snapshot: LogSnapshot, after: Int64, filter: EventFilter = EventFilter(),
        _ body: (Int64, RecordView) throws -> Bool
    ) throws {
        let head = snapshot.headSeq
        let sealed = snapshot.sealedSeq
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
        let mask = filter.typeMask
        if start < sealed {
            let statement = try database.prepare(
                """
                SELECT first_seq, event_count, first_ts, type_mask, records_bytes, dictionary_id, payload, payload_check
                FROM blocks
                WHERE first_seq >= COALESCE((SELECT max(first_seq) FROM blocks WHERE first_seq <= ?1), 1) AND first_seq <= ?2
                ORDER BY first_seq
                """)
            statement.bind(1, start + 1)
            statement.bind(2, min(head, sealed))
            var buffer: [UInt8] = []
            while try statement.step() {
                guard statement.int(3) & mask != 0 else { continue }
                let firstSeq = statement.int64(0)
                let count = statement.int(1)
                let dictionary = try context.dictionaries.dictionary(statement.int64(5), database: database)
                buffer = try DecodedBlock.records(
                    payload: statement.blob(6), rawCount: statement.int(4), dictionary: dictionary,
                    payloadCheck: statement.int64(7), firstSeq: firstSeq)
                let keepGoing = try buffer.withUnsafeBytes { bytes -> Bool in
                    var reader = ByteReader(bytes)
                    var previous = statement.int64(2)
                    for offset in 0..<count {
                        let seq = firstSeq + Int64(offset)
                        let record: RecordView
                        do {
                            record = try RecordView.read(&reader, previousTimestamp: previous)
                        } catch {
                            throw StoreError(.internal, "the log is damaged: event \(seq) does not decode (\(error))")
                        }
                        previous = record.timestampMilliseconds
                        if seq <= start { continue }
                        if seq > head { return false }
                        guard try body(seq, record) else { return false }
                    }
                    return true
                }
                if !keepGoing { return }
            }
        }
        guard head > sealed else { return }
        let statement = try database.prepare(
            "SELECT seq, record FROM tail WHERE seq > ?1 AND seq <= ?2 ORDER BY seq")
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
            guard mask & 1 << Int(record.type.rawValue) != 0 else { continue }
            guard try body(seq, record) else { return }
        }
    }
}

extension EventFilter {
    func matches(_ record: RecordView) -> Bool {
        if typeMask & 1 << Int(record.type.rawValue) == 0 { return false }
        if let since, record.timestampMilliseconds < since { return false }
        if let until, record.timestampMilliseconds >= until { return false }
        return true
    }
}

/// Writes envelopes of the `all` stream from records in place, caching what repeats: user ids
/// (by number) and the second of the timestamp.
struct EnvelopeWriter {
    var bytes: [UInt8] = []
    private let store: Store
    private let database: Database
    private var userNames: [Int64: [UInt8]] = [:]
    private var second: Int64 = .min
    private var secondText: [UInt8] = []
    private var notification: [UInt8] = []

    init(store: Store, database: Database) {
        self.store = store
        self.database = database
        bytes.reserveCapacity(Store.exportChunkBytes + 70_000)
    }

    mutating func append(seq: Int64, record: RecordView) throws {
        bytes.appendLiteral(#"{"seq":"#)
        JSONText.appendInteger(seq, to: &bytes)
        bytes.appendLiteral(#","stream_seq":"#)
        JSONText.appendInteger(record.streamSeq, to: &bytes)
        bytes.appendLiteral(#","user_id":"#)
        if let name = userNames[record.userNo] {
            bytes += name
        } else {
            var name: [UInt8] = []
            JSONText.appendQuoted(try store.context.users.name(record.userNo, database: database), to: &name)
            if userNames.count > 100_000 { userNames.removeAll(keepingCapacity: true) }
            userNames[record.userNo] = name
            bytes += name
        }
        bytes.appendLiteral(#","id":""#)
        if record.explicitID.isEmpty {
            store.context.derivedIDs.append(seq: seq, to: &bytes)
        } else {
            RecordView.appendIdentifierText(record.explicitID, to: &bytes)
        }
        switch record.type {
        case .created: bytes.appendLiteral(#"","type":"notification.created","ts":""#)
        case .read: bytes.appendLiteral(#"","type":"notification.read","ts":""#)
        case .readAll: bytes.appendLiteral(#"","type":"notification.read_all","ts":""#)
        }
        appendTimestamp(record.timestampMilliseconds)
        bytes.appendLiteral(#"","data":"#)
        notification.removeAll(keepingCapacity: true)
        if !record.notificationID.isEmpty { RecordView.appendIdentifierText(record.notificationID, to: &notification) }
        do {
            try DataTransform.decode(record.transformedData, notificationID: notification, into: &bytes)
        } catch {
            throw StoreError(.internal, "the log is damaged: data of event \(seq) does not decode (\(error))")
        }
        bytes.appendLiteral(#","cursor":""#)
        Cursor.appendAllText(epoch: store.epoch, seq: seq, to: &bytes)
        bytes.appendLiteral("\"}\n")
    }

    private mutating func appendTimestamp(_ milliseconds: Int64) {
        let seconds = milliseconds >= 0 ? milliseconds / 1000 : (milliseconds - 999) / 1000
        if seconds != second {
            second = seconds
            secondText.removeAll(keepingCapacity: true)
            Timestamp.append(milliseconds: seconds * 1000, to: &secondText)
            secondText.removeLast(5)  // ".000Z"
        }
        bytes += secondText
        let millis = Int(milliseconds - seconds * 1000)
        bytes.appendWritten(capacity: 5) { text in
            text[0] = UInt8(ascii: ".")
            text[1] = UInt8(ascii: "0") + UInt8(millis / 100)
            text[2] = UInt8(ascii: "0") + UInt8(millis / 10 % 10)
            text[3] = UInt8(ascii: "0") + UInt8(millis % 10)
            text[4] = UInt8(ascii: "Z")
            return 5
        }
    }
}
