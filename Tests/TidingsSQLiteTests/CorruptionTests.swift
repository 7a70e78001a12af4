import Foundation
import Testing
import TidingsTestSupport

@testable import TidingsSQLite
@testable import TidingsStore

/// Damage the files the way a bad disk, a torn write or a tamperer would (with the append-only
/// triggers dropped), and check that `verify` finds it and names the first bad seq.
@Suite struct CorruptionTests {
    /// A store of 300 corpus events in small blocks, with a tail, closed.
    static func damagedStoreFixture() async throws -> TemporaryStore {
        var options = StoreOptions()
        options.blockTargetBytes = 1_024
        let temporary = try await TemporaryStore(options: options)
        var corpus = CorpusGenerator(seed: 12, userCount: 50)
        let events = (0..<300).map { _ in
            let event = corpus.next()
            return NewEvent(type: event.type, userID: event.userID, data: event.data)
        }
        for start in stride(from: 0, to: 300, by: 37) {
            _ = try await temporary.store.append(Array(events[start..<min(start + 37, 300)]))
        }
        return temporary
    }

    static func tamper(_ path: String, _ body: (Database) throws -> Void) throws {
        try withDatabase(path) { database in
            for trigger in [
                "users_append_only_update", "users_append_only_delete", "blocks_append_only_update",
                "blocks_append_only_delete", "blocks_contiguous", "tail_append_only_update", "tail_delete_only_sealed",
            ] {
                try database.execute("DROP TRIGGER IF EXISTS \(trigger)")
            }
            try body(database)
        }
    }

    static func blocks(_ path: String) throws -> [(first: Int64, count: Int64, payload: Int)] {
        var out: [(Int64, Int64, Int)] = []
        try withDatabase(path) { database in
            let statement = try database.prepare(
                "SELECT first_seq, event_count, length(payload) FROM blocks ORDER BY first_seq")
            while try statement.step() { out.append((statement.int64(0), statement.int64(1), statement.int(2))) }
        }
        return out
    }

    @Test func intactStoreVerifies() async throws {
        let temporary = try await Self.damagedStoreFixture()
        let result = try await temporary.store.verifyLog()
        #expect(result.ok)
        #expect(result.events == 300)
        #expect(result.firstBadSeq == nil)
        #expect(result.headHash.count == 64)
    }

    @Test(arguments: 0..<12)
    func flippedByteInABlockIsFoundInThatBlock(seed: Int) async throws {
        let temporary = try await Self.damagedStoreFixture()
        temporary.store.close()
        let blocks = try Self.blocks(temporary.databasePath)
        var random = SeededGenerator(seed: UInt64(seed))
        // Any block but the newest (opening refuses a damaged newest block; tested below).
        let block = blocks[Int(random.next() % UInt64(blocks.count - 1))]
        let offset = Int(random.next() % UInt64(block.payload))
        let mask = UInt8(random.next() % 255 + 1)
        try Self.tamper(temporary.databasePath) { database in
            let select = try database.prepare("SELECT payload FROM blocks WHERE first_seq = ?1")
            select.bind(1, block.first)
            _ = try select.step()
            var payload = select.bytes(0)
            select.reset()
            payload[offset] ^= mask
            let update = try database.prepare("UPDATE blocks SET payload = ?1 WHERE first_seq = ?2")
            update.bind(1, blob: payload)
            update.bind(2, block.first)
            try update.run()
        }
        try await temporary.reopen()
        let result = try await temporary.store.verifyLog()
        #expect(!result.ok)
        let bad = try #require(result.firstBadSeq)
        #expect(bad >= block.first && bad < block.first + block.count, "\(String(describing: result.problem))")
    }

    @Test func flippedCheckOrEndHashNamesTheExactEvent() async throws {
        let temporary = try await Self.damagedStoreFixture()
        temporary.store.close()
        let block = try Self.blocks(temporary.databasePath)[3]
        try Self.tamper(temporary.databasePath) { database in
            // The third event's check bytes.
            try database.execute(
                "UPDATE blocks SET checks = CAST(substr(checks, 1, 8) || x'00000000' || substr(checks, 13) AS BLOB) WHERE first_seq = \(block.first)"
            )
        }
        try await temporary.reopen()
        var result = try await temporary.store.verifyLog()
        #expect(result.firstBadSeq == block.first + 2)
        #expect(result.problem == "event \(block.first + 2) does not match the hash chain")
        temporary.store.close()
        try Self.tamper(temporary.databasePath) { database in
            try database.execute(
                "UPDATE blocks SET checks = (SELECT checks FROM blocks b WHERE b.first_seq = \(block.first)) WHERE 0")
            try database.execute("UPDATE blocks SET end_hash = zeroblob(32) WHERE first_seq = \(block.first)")
        }
        try await temporary.reopen()
        result = try await temporary.store.verifyLog()
        #expect(result.firstBadSeq == block.first + 2)
    }

    @Test func deletedBlockNamesTheFirstMissingSeq() async throws {
        let temporary = try await Self.damagedStoreFixture()
        temporary.store.close()
        let block = try Self.blocks(temporary.databasePath)[2]
        try Self.tamper(temporary.databasePath) { database in
            try database.execute("DELETE FROM blocks WHERE first_seq = \(block.first)")
        }
        try await temporary.reopen()
        let result = try await temporary.store.verifyLog()
        #expect(result.firstBadSeq == block.first)
        #expect(
            result.problem
                == "events \(block.first)-\(block.first + block.count - 1) are missing from the sealed blocks")
    }

    @Test func swappedBlocksNameTheFirstSwappedEvent() async throws {
        let temporary = try await Self.damagedStoreFixture()
        temporary.store.close()
        let blocks = try Self.blocks(temporary.databasePath)
        let (a, b) = (blocks[1], blocks[4])
        try Self.tamper(temporary.databasePath) { database in
            try database.execute(
                """
                UPDATE blocks SET payload = CASE first_seq WHEN \(a.first) THEN (SELECT payload FROM blocks WHERE first_seq = \(b.first))
                    ELSE (SELECT payload FROM blocks WHERE first_seq = \(a.first)) END,
                    records_bytes = CASE first_seq WHEN \(a.first) THEN (SELECT records_bytes FROM blocks WHERE first_seq = \(b.first))
                    ELSE (SELECT records_bytes FROM blocks WHERE first_seq = \(a.first)) END
                WHERE first_seq IN (\(a.first), \(b.first))
                """)
        }
        try await temporary.reopen()
        let result = try await temporary.store.verifyLog()
        #expect(result.firstBadSeq == a.first)
    }

    @Test func changedUserIDIsFoundAtThatUsersFirstEvent() async throws {
        let temporary = try await Self.damagedStoreFixture()
        let events = try await temporary.store.allEvents(after: nil, limit: 1000).events
        temporary.store.close()
        let newestBlock = try Self.blocks(temporary.databasePath).last!.first
        // A user whose events all sit in older blocks, so the store still opens.
        let lastSeq = Dictionary(events.map { ($0.userID, $0.seq) }, uniquingKeysWith: max)
        let user = try #require(events.first { lastSeq[$0.userID]! < newestBlock })
        try Self.tamper(temporary.databasePath) { database in
            try database.execute("UPDATE users SET user_id = 'mallory' WHERE user_id = '\(user.userID)'")
        }
        try await temporary.reopen()
        let result = try await temporary.store.verifyLog()
        #expect(result.firstBadSeq == user.seq)
    }

    @Test func damagedTailEventIsNamedAndOpeningRefusesIt() async throws {
        let temporary = try await Self.damagedStoreFixture()
        temporary.store.close()
        let tail: [Int64] = try {
            var seqs: [Int64] = []
            try withDatabase(temporary.databasePath) { database in
                let statement = try database.prepare("SELECT seq FROM tail ORDER BY seq")
                while try statement.step() { seqs.append(statement.int64(0)) }
            }
            return seqs
        }()
        try #require(tail.count >= 2)
        try Self.tamper(temporary.databasePath) { database in
            try database.execute(
                "UPDATE tail SET record = CAST(substr(record, 1, length(record) - 2) || x'2121' AS BLOB) WHERE seq = \(tail[1])"
            )
        }
        do {
            try await temporary.reopen()
            Issue.record("a store with a damaged tail opened")
        } catch let error as StoreError {
            #expect(error.code == .internal)
            #expect(error.message.contains("damaged at seq \(tail[1])"), "\(error.message)")
            #expect(error.message.contains("tidings verify"))
        }
    }

    @Test func deletedTailRowIsNamed() async throws {
        let temporary = try await Self.damagedStoreFixture()
        temporary.store.close()
        try Self.tamper(temporary.databasePath) { database in
            try database.execute("DELETE FROM tail WHERE seq = (SELECT min(seq) FROM tail)")
        }
        await #expect(throws: StoreError.self) { try await temporary.reopen() }
    }

    @Test func logTablesRefuseUpdatesAndDeletes() async throws {
        let temporary = try await Self.damagedStoreFixture()
        temporary.store.close()
        try withDatabase(temporary.databasePath) { database in
            for statement in [
                "UPDATE users SET user_id = 'x'", "DELETE FROM users", "UPDATE blocks SET payload = x'00'",
                "DELETE FROM blocks", "UPDATE dictionaries SET bytes = x'00'", "DELETE FROM dictionaries",
                "UPDATE tail SET record = x'00'", "DELETE FROM tail",
                "INSERT INTO blocks (first_seq, event_count, first_ts, last_ts, type_mask, raw_bytes, records_bytes, dictionary_id, payload, checks, end_hash) VALUES (100000, 1, 0, 0, 1, 1, 1, 0, x'00', x'00000000', zeroblob(32))",
            ] {
                #expect(throws: SQLiteError.self, "\(statement)") { try database.execute(statement) }
            }
        }
        try await temporary.reopen()
        #expect(try await temporary.store.verifyLog().ok)
    }

    @Test func checkpointOfAnAuditorStillHoldsOrNot() async throws {
        let temporary = try await Self.damagedStoreFixture()
        let store = temporary.store!
        let early = try await store.verifyLog()
        let recorded = (seq: early.headSeq, hash: HashChain.parseHex(early.headHash)!)
        _ = try await store.append([created("late", "n")])
        var result = try await store.verifyLog(checkpoint: recorded)
        #expect(result.ok)
        #expect(result.checkpointOK == true)
        result = try await store.verifyLog(checkpoint: (seq: recorded.seq - 1, hash: recorded.hash))
        #expect(result.checkpointOK == false)
        result = try await store.verifyLog(checkpoint: (seq: 10_000, hash: recorded.hash))
        #expect(result.checkpointOK == false)
        result = try await store.verifyLog(checkpoint: (seq: 0, hash: HashChain.genesis))
        #expect(result.checkpointOK == true)
    }

    @Test func emptyStoreVerifiesWithZeroHash() async throws {
        let temporary = try await TemporaryStore()
        let result = try await temporary.store.verifyLog()
        #expect(result.ok)
        #expect(result.headSeq == 0)
        #expect(result.headHash == String(repeating: "0", count: 64))
    }

    @Test func chainCanBeRecomputedFromTheExportAlone() async throws {
        // An auditor needs only the NDJSON export and docs/STORAGE.md's recipe.
        let temporary = try await Self.damagedStoreFixture()
        let store = temporary.store!
        var hash = HashChain.genesis
        for event in try await store.allEvents(after: nil, limit: 1000).events {
            var canonical: [UInt8] = []
            HashChain.canonicalBytes(
                seq: event.seq, streamSeq: event.streamSeq, timestampMilliseconds: event.timestampMilliseconds,
                type: event.type, userID: event.userID.utf8, id: event.id.utf8, data: event.data, into: &canonical)
            hash = HashChain.next(previous: hash, canonical: canonical)
        }
        #expect(HashChain.hex(hash) == (try await store.verifyLog()).headHash)
    }
}
