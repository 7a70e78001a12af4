/// An event of the writer's open transaction or of the unsealed tail, with what sealing needs.
package struct PendingEvent: Sendable {
    package var seq: Int64
    package var record: LogRecord
    /// The chain hash after this event.
    package var hash: [UInt8]
    /// Compact JSON size as appended (`raw_bytes`).
    package var rawSize: Int
    package init(seq: Int64, record: LogRecord, hash: [UInt8], rawSize: Int) {
        self.seq = seq
        self.record = record
        self.hash = hash
        self.rawSize = rawSize
    }
}

/// A sealed block: consecutive events, their records LZ4-compressed together, with the chain
/// hash after the last event and the first 4 bytes of every event's chain hash (`checks`), so
/// `verify` can name the first damaged event, not just the block.
package struct Block: Sendable {
    package var firstSeq: Int64
    package var eventCount: Int
    package var firstTimestamp: Int64
    package var lastTimestamp: Int64
    /// Bit `1 << type.rawValue` for every event type inside, so type filters skip blocks.
    package var typeMask: Int
    package var rawBytes: Int
    /// Size of the uncompressed records.
    package var recordsBytes: Int
    package var dictionaryID: Int64
    package var payload: [UInt8]
    package var payloadCheck: Int64
    package var checks: [UInt8]
    package var endHash: [UInt8]

    package static let checkBytes = 4

    package var lastSeq: Int64 { firstSeq + Int64(eventCount) - 1 }

    /// Seals `events` (consecutive, non-empty) into a block.
    package static func seal(
        _ events: ArraySlice<PendingEvent>, compressor: LZ4Compressor, dictionaryID: Int64
    ) -> Block {
        precondition(!events.isEmpty, "a block holds at least one event")
        var records: [UInt8] = []
        records.reserveCapacity(events.count * 320)
        var checks: [UInt8] = []
        checks.reserveCapacity(events.count * checkBytes)
        var previous = events.first!.record.timestampMilliseconds
        let firstTimestamp = previous
        var typeMask = 0
        var rawBytes = 0
        var expectedSeq = events.first!.seq
        for event in events {
            precondition(event.seq == expectedSeq, "a block's events are consecutive")
            expectedSeq += 1
            event.record.encode(previousTimestamp: previous, into: &records)
            previous = event.record.timestampMilliseconds
            checks += event.hash.prefix(checkBytes)
            typeMask |= event.record.type.maskBit
            rawBytes += event.rawSize
        }
        var payload: [UInt8] = []
        compressor.compress(records, into: &payload)
        return Block(
            firstSeq: events.first!.seq, eventCount: events.count, firstTimestamp: firstTimestamp,
            lastTimestamp: previous, typeMask: typeMask, rawBytes: rawBytes, recordsBytes: records.count,
            dictionaryID: dictionaryID, payload: payload, payloadCheck: payload.withUnsafeBytes(BlockChecksum.of),
            checks: checks, endHash: events.last!.hash)
    }
    package init(
        firstSeq: Int64, eventCount: Int, firstTimestamp: Int64, lastTimestamp: Int64, typeMask: Int, rawBytes: Int,
        recordsBytes: Int, dictionaryID: Int64, payload: [UInt8], payloadCheck: Int64, checks: [UInt8], endHash: [UInt8]
    ) {
        self.firstSeq = firstSeq
        self.eventCount = eventCount
        self.firstTimestamp = firstTimestamp
        self.lastTimestamp = lastTimestamp
        self.typeMask = typeMask
        self.rawBytes = rawBytes
        self.recordsBytes = recordsBytes
        self.dictionaryID = dictionaryID
        self.payload = payload
        self.payloadCheck = payloadCheck
        self.checks = checks
        self.endHash = endHash
    }
}

/// The columns of a block row other than its payload, and its decompressed records.
package struct DecodedBlock: Sendable {
    package var firstSeq: Int64
    package var eventCount: Int
    package var firstTimestamp: Int64
    package var typeMask: Int
    package var records: [UInt8]
    package var lastSeq: Int64 { firstSeq + Int64(eventCount) - 1 }

    /// What the block holds in memory, as the block cache counts it. A block keeps no index of
    /// where its records start: building one cost more than the walks it saved, since a
    /// per-user read takes one or two events from most blocks it reads (about 17 records,
    /// most of a few hundred bytes, skipped by their lengths).
    package var cachedBytes: Int { records.count }

    /// Visits every record in order.
    package func forEach(_ body: (Int64, LogRecord) throws -> Bool) throws {
        try records.withUnsafeBytes { bytes in
            var reader = ByteReader(bytes)
            var previous = firstTimestamp
            for offset in 0..<eventCount {
                let record = try LogRecord.decode(&reader, previousTimestamp: previous)
                previous = record.timestampMilliseconds
                guard try body(firstSeq + Int64(offset), record) else { return }
            }
            guard reader.isAtEnd else { throw DecodeError(reason: "block \(firstSeq) has bytes after its records") }
        }
    }

    /// Visits every record in order, read in place; `body` returns false to stop.
    package func forEachView(_ body: (Int64, RecordView) throws -> Bool) throws {
        _ = try Self.forEachView(
            records: records, firstSeq: firstSeq, firstTimestamp: firstTimestamp, count: eventCount, body)
    }

    /// Visits the records of a block's decompressed bytes in order, read in place; `body`
    /// returns false to stop. Returns false when `body` stopped the walk.
    package static func forEachView(
        records: [UInt8], firstSeq: Int64, firstTimestamp: Int64, count: Int, _ body: (Int64, RecordView) throws -> Bool
    ) throws -> Bool {
        try records.withUnsafeBytes { bytes in
            var reader = ByteReader(bytes)
            var previous = firstTimestamp
            for offset in 0..<count {
                let seq = firstSeq + Int64(offset)
                let record: RecordView
                do {
                    record = try RecordView.read(&reader, previousTimestamp: previous)
                } catch {
                    throw StoreError(.internal, "the log is damaged: event \(seq) does not decode (\(error))")
                }
                previous = record.timestampMilliseconds
                guard try body(seq, record) else { return false }
            }
            return true
        }
    }

    /// Calls `body` with the records of `seqs` (ascending, all inside this block), read in place
    /// in one walk through the block.
    package func withRecords(seqs: ArraySlice<Int64>, _ body: (Int64, RecordView) throws -> Void) throws {
        try records.withUnsafeBytes { bytes in
            var reader = ByteReader(bytes)
            var previous = firstTimestamp
            var current = firstSeq
            for seq in seqs {
                guard seq >= current && seq <= lastSeq else {
                    throw StoreError(.internal, "the stream index names seq \(seq) out of order for block \(firstSeq)")
                }
                let record: RecordView
                do {
                    while current < seq {
                        previous = try LogRecord.skip(&reader, previousTimestamp: previous)
                        current += 1
                    }
                    record = try RecordView.read(&reader, previousTimestamp: previous)
                } catch {
                    throw StoreError(.internal, "the log is damaged: event \(seq) does not decode (\(error))")
                }
                previous = record.timestampMilliseconds
                current += 1
                try body(seq, record)
            }
        }
    }

    /// The record of one seq inside this block, stepping over the ones before it.
    package func record(seq: Int64) throws -> LogRecord {
        precondition(seq >= firstSeq && seq <= lastSeq, "seq outside the block")
        return try records.withUnsafeBytes { bytes in
            var reader = ByteReader(bytes)
            var previous = firstTimestamp
            for _ in 0..<Int(seq - firstSeq) {
                previous = try LogRecord.skip(&reader, previousTimestamp: previous)
            }
            return try LogRecord.decode(&reader, previousTimestamp: previous)
        }
    }
    package init(firstSeq: Int64, eventCount: Int, firstTimestamp: Int64, typeMask: Int, records: [UInt8]) {
        self.firstSeq = firstSeq
        self.eventCount = eventCount
        self.firstTimestamp = firstTimestamp
        self.typeMask = typeMask
        self.records = records
    }
}

extension DecodedBlock {
    /// A sealed block's records from its stored payload: the payload checksum first (a damaged
    /// payload can still decompress, to wrong events), then decompression. Every read of a
    /// block's events goes through here; `verify` walks the hash chain instead.
    package static func records(
        payload: UnsafeRawBufferPointer, rawCount: Int, dictionary: [UInt8]?, payloadCheck: Int64, firstSeq: Int64
    ) throws(StoreError) -> [UInt8] {
        try BlockChecksum.check(payload, recorded: payloadCheck, firstSeq: firstSeq)
        do {
            return try LZ4Decoder.decompress(payload, rawCount: rawCount, dictionary: dictionary)
        } catch {
            throw StoreError(.internal, "the log is damaged: block at seq \(firstSeq) does not decompress (\(error))")
        }
    }
}
