/// Walks the log in seq order recomputing the hash chain, and stops at the first event that does
/// not match: a missing or extra event, a block that does not decompress, a record that does not
/// decode, a changed byte anywhere (data, ids, user ids, timestamps), a stream_seq gap or a
/// timestamp that goes backwards. Each engine feeds it its block rows in order; the rules are
/// the same for all.
package struct ChainWalk {
    package struct Damage: Error {
        package var seq: Int64
        package var problem: String

        package init(seq: Int64, problem: String) {
            self.seq = seq
            self.problem = problem
        }
    }

    /// A block row as stored, its payload not yet decompressed.
    package struct BlockRow {
        package var firstSeq: Int64
        package var eventCount: Int
        package var firstTimestamp: Int64
        package var lastTimestamp: Int64
        package var typeMask: Int
        package var checks: [UInt8]
        package var endHash: [UInt8]

        package init(
            firstSeq: Int64, eventCount: Int, firstTimestamp: Int64, lastTimestamp: Int64, typeMask: Int,
            checks: [UInt8], endHash: [UInt8]
        ) {
            self.firstSeq = firstSeq
            self.eventCount = eventCount
            self.firstTimestamp = firstTimestamp
            self.lastTimestamp = lastTimestamp
            self.typeMask = typeMask
            self.checks = checks
            self.endHash = endHash
        }
    }

    package private(set) var previousHash: [UInt8]
    package private(set) var nextSeq: Int64
    package private(set) var blocks: Int64 = 0
    private var lastTimestamp: Int64 = 0
    /// Last stream_seq per user; only checked when walking from the start of the log.
    private var streamSeqs: [Int64: Int64]?
    private let derivedIDs: DerivedEventID
    /// Called with the hash after every event (for checkpoints).
    package var onEvent: ((Int64, [UInt8]) -> Void)?

    package init(epoch: UInt64, startingAfter seq: Int64, previousHash: [UInt8]) {
        self.previousHash = previousHash
        nextSeq = seq + 1
        streamSeqs = seq == 0 ? [:] : nil
        derivedIDs = DerivedEventID(epoch: epoch)
    }

    /// Checks one block: its place in the log, its records against the chain and its check
    /// bytes, its header against its records. `records` decompresses the payload.
    package mutating func check(
        _ row: BlockRow, records: () throws -> [UInt8], userName: (Int64) throws -> String
    ) throws(Damage) {
        let firstSeq = row.firstSeq
        let count = row.eventCount
        blocks += 1
        guard firstSeq == nextSeq else {
            throw firstSeq > nextSeq
                ? Damage(seq: nextSeq, problem: "events \(nextSeq)-\(firstSeq - 1) are missing from the sealed blocks")
                : Damage(seq: firstSeq, problem: "the block at seq \(firstSeq) overlaps the one before it")
        }
        guard count > 0, row.checks.count == count * Block.checkBytes else {
            throw Damage(seq: firstSeq, problem: "the block at seq \(firstSeq) has a damaged header")
        }
        let bytes: [UInt8]
        do {
            bytes = try records()
        } catch {
            throw Damage(seq: firstSeq, problem: "the block at seq \(firstSeq) does not decompress")
        }
        var typeMask = 0
        var previous = row.firstTimestamp
        do {
            try bytes.withUnsafeBytes { bytes in
                var reader = ByteReader(bytes)
                for offset in 0..<count {
                    let seq = firstSeq + Int64(offset)
                    let record: LogRecord
                    do {
                        record = try LogRecord.decode(&reader, previousTimestamp: previous)
                    } catch {
                        throw Damage(seq: seq, problem: "event \(seq) does not decode (\(error))")
                    }
                    previous = record.timestampMilliseconds
                    typeMask |= record.type.maskBit
                    let hash = try check(seq: seq, record: record, userName: userName)
                    guard
                        hash.prefix(Block.checkBytes).elementsEqual(
                            row.checks[offset * Block.checkBytes..<(offset + 1) * Block.checkBytes])
                    else { throw Damage(seq: seq, problem: "event \(seq) does not match the hash chain") }
                }
                guard reader.isAtEnd else {
                    throw Damage(
                        seq: firstSeq + Int64(count) - 1,
                        problem: "the block at seq \(firstSeq) has bytes after its events")
                }
            }
        } catch let damage as Damage {
            throw damage
        } catch {
            throw Damage(seq: firstSeq, problem: "the block at seq \(firstSeq) cannot be read: \(error)")
        }
        guard previous == row.lastTimestamp, typeMask == row.typeMask else {
            throw Damage(seq: firstSeq, problem: "the block at seq \(firstSeq) has a damaged header")
        }
        guard row.endHash == previousHash else {
            throw Damage(seq: nextSeq - 1, problem: "the block ending at seq \(nextSeq - 1) records another chain hash")
        }
    }

    /// Checks one event against the chain and returns the hash after it.
    package mutating func check(
        seq: Int64, record: LogRecord, userName: (Int64) throws -> String
    ) throws(Damage) -> [UInt8] {
        precondition(seq == nextSeq, "the chain is walked in seq order; callers check for missing events")
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
            userID = try userName(record.userNo)
            data = try record.data()
        } catch {
            throw Damage(seq: seq, problem: "event \(seq) does not decode (\(error))")
        }
        var canonical: [UInt8] = []
        canonical.reserveCapacity(data.count + 96)
        HashChain.canonicalBytes(
            seq: seq, streamSeq: record.streamSeq, timestampMilliseconds: record.timestampMilliseconds,
            type: record.type, userID: userID.utf8, id: record.explicitID ?? derivedIDs.text(seq: seq), data: data,
            into: &canonical)
        let hash = HashChain.next(previous: previousHash, canonical: canonical)
        previousHash = hash
        nextSeq = seq + 1
        onEvent?(seq, hash)
        return hash
    }

    /// Checks the recorded head against what the walk found.
    package func checkHead(seq headSeq: Int64, hash headHash: [UInt8]) throws(Damage) {
        guard headSeq == nextSeq - 1 else {
            throw headSeq > nextSeq - 1
                ? Damage(seq: nextSeq, problem: "events \(nextSeq)-\(headSeq) are missing")
                : Damage(seq: headSeq + 1, problem: "events after the recorded head \(headSeq) are present")
        }
        guard headHash == previousHash else {
            throw Damage(seq: headSeq, problem: "the recorded head hash differs from the chain")
        }
    }
}
