import Foundation
import Testing
import TidingsTestSupport

@testable import TidingsSQLite
@testable import TidingsServer
@testable import TidingsStore

/// Seeded random mutation of valid inputs into every decoder that reads bytes from outside or
/// from disk: request bodies, cursors, WebSocket messages, and compressed log blocks. Each
/// runs for a bounded time: `TIDINGS_FUZZ_SECONDS` per target (default 2), from
/// `TIDINGS_FUZZ_SEED` (default 1, so a failure in CI replays exactly); `tools/fuzz` runs it
/// long with fresh seeds. The oracle is the contract: a decoder returns a value or its
/// documented error, never crashes, and agrees with itself and with a second implementation.
@Suite struct FuzzTests {
    static let seconds = Double(ProcessInfo.processInfo.environment["TIDINGS_FUZZ_SECONDS"] ?? "") ?? 2
    static let seed = UInt64(ProcessInfo.processInfo.environment["TIDINGS_FUZZ_SEED"] ?? "") ?? 1

    /// Runs `body` on mutants of `seeds` until the time is up; returns the number of inputs.
    static func fuzz(_ seeds: [[UInt8]], salt: UInt64, _ body: ([UInt8]) throws -> Void) rethrows -> Int {
        var mutator = Mutator(seed: seed &+ salt, seeds: seeds)
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1_000))
        var count = 0
        for input in seeds {
            try body(input)
            count += 1
        }
        while ContinuousClock.now < deadline {
            for _ in 0..<64 {
                try body(mutator.next())
                count += 1
            }
        }
        return count
    }

    static let bodySeeds: [[UInt8]] = {
        var corpus = CorpusGenerator(seed: 7, userCount: 50)
        let events: [[UInt8]] = (0..<12).map { _ in corpus.next().json }
        var batch: [UInt8] = Array(#"{"events":["#.utf8)
        batch += events[6..<12].joined(separator: Array(",".utf8))
        batch += Array("]}".utf8)
        let readAll: [UInt8] = Array(
            #"{"type":"notification.read_all","user_id":"alice","data":{"up_to_seq":12}}"#.utf8)
        let escapes: [UInt8] = Array(
            #"{"type":"notification.created","user_id":"b","id":"e-1","data":{"notification_id":"n\u00e9\ud83d\ude00","title":"\"q\"\n","n":[1.5e3,-0,true,null,{}]}}"#
                .utf8)
        return Array(events.prefix(6)) + [batch, readAll, escapes]
    }()

    @Test func requestBodies() throws {
        var accepted = 0
        let count = try Self.fuzz(Self.bodySeeds, salt: 1) { input in
            do {
                let events = try EventDecoder.decodeAppendBody(input)
                accepted += 1
                // Only JSON is accepted: a second, independent parser must agree.
                let parsed = try? JSONSerialization.jsonObject(with: Data(input), options: [.fragmentsAllowed])
                #expect(parsed != nil, "accepted what Foundation rejects: \(String(decoding: input, as: UTF8.self))")
                #expect(!events.isEmpty)
                // Decoding is a function of the bytes.
                #expect(try EventDecoder.decodeAppendBody(input).count == events.count)
            } catch let error as StoreError {
                #expect(!error.message.isEmpty)
                #expect(["bad_request", "validation_failed", "payload_too_large"].contains(error.code.rawValue))
            }
        }
        print("fuzz requestBodies: \(count) inputs, \(accepted) accepted, seed \(Self.seed)")
        #expect(accepted >= Self.bodySeeds.count)
    }

    @Test func cursors() throws {
        let epoch: UInt64 = 0xA5A5_0102_0304_0506
        let seeds: [[UInt8]] = [
            Cursor.all(epoch: epoch, seq: 0, anchor: .start),
            Cursor.all(epoch: epoch, seq: 1 << 40, anchor: CursorAnchor(seq: 1 << 41, check: 0xDEAD_BEEF)),
            Cursor.user("alice", epoch: epoch, streamSeq: 77, anchor: CursorAnchor(seq: 500, check: 7)),
            Cursor.user("alice", epoch: epoch, streamSeq: 77, anchor: nil),
        ].map { Array($0.text.utf8) }
        var accepted = 0
        let count = try Self.fuzz(seeds, salt: 2) { input in
            let text = String(decoding: input, as: UTF8.self)
            do {
                let cursor = try Cursor.parse(text)
                accepted += 1
                // A cursor that parses is one this software writes, byte for byte.
                #expect(cursor.text == text)
            } catch let error as StoreError {
                #expect(error.code == .invalidCursor)
            }
        }
        print("fuzz cursors: \(count) inputs, \(accepted) accepted, seed \(Self.seed)")
    }

    @Test func webSocketMessages() throws {
        let seeds: [[UInt8]] = [
            #"{"type":"read","ref":"r1","notification_ids":["n-1","n-2"]}"#,
            #"{"type":"read","ref":"r2","all":true,"up_to_seq":42}"#,
            #"{"type":"read","ref":"r3","all":true}"#,
            #"{"type":"hello","token":"a.b.c","stream":"user","user_id":"alice","cursor":null}"#,
            #"{"type":"hello","stream":"all","cursor":"AQ"}"#,
        ].map { Array($0.utf8) }
        let count = try Self.fuzz(seeds, salt: 3) { input in
            let text = String(decoding: input, as: UTF8.self)
            do {
                _ = try ClientMessage(text)
            } catch let error as StreamFault {
                #expect(error.closeCode == 4400)
                #expect(error.errorCode == "bad_request")
            }
            do {
                _ = try Hello(text)
            } catch let error as StreamFault {
                #expect([4400, 4401].contains(error.closeCode))
            }
        }
        print("fuzz webSocketMessages: \(count) inputs, seed \(Self.seed)")
    }

    /// Real blocks of a real store, their compressed payloads mutated: decompression and record
    /// decoding return events or an error, and an unmutated block decodes to what was stored.
    @Test func logBlocks() async throws {
        let directory = NSTemporaryDirectory() + "tidings-fuzz-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try await SQLiteStore.open(directory: directory, options: StoreOptions())
        var corpus = CorpusGenerator(seed: 11, userCount: 200)
        let events = try (0..<600).map { _ in try EventDecoder.decodeEvent(corpus.next().json) }
        _ = try await store.append(events)
        store.close()
        typealias Row = (header: DecodedBlock, rawCount: Int, dictionary: [UInt8]?, payload: [UInt8])
        var rows: [Row] = []
        try withDatabaseFile(directory + "/" + SQLiteStore.databaseFileName) { database in
            let dictionaries = DictionaryCache()
            let statement = try database.prepare(
                "SELECT first_seq, event_count, first_ts, type_mask, records_bytes, dictionary_id, payload FROM blocks")
            while try statement.step() {
                let header = DecodedBlock(
                    firstSeq: statement.int64(0), eventCount: statement.int(1), firstTimestamp: statement.int64(2),
                    typeMask: statement.int(3), records: [])
                rows.append(
                    (
                        header, statement.int(4), try dictionaries.dictionary(statement.int64(5), database: database),
                        statement.bytes(6)
                    ))
            }
        }
        #expect(rows.count >= 3, "the store sealed several blocks")
        var decoded = 0
        var index = 0
        let count = Self.fuzz(rows.map(\.payload), salt: 4) { input in
            let row = rows[index % rows.count]
            index += 1
            if let events = Self.decodeBlock(row.header, input, rawCount: row.rawCount, dictionary: row.dictionary) {
                decoded += 1
                if input == row.payload { #expect(events == row.header.eventCount) }
            } else {
                #expect(input != row.payload, "an intact block decodes")
            }
        }
        print("fuzz logBlocks: \(count) inputs, \(decoded) decoded, seed \(Self.seed)")
    }

    /// Every record of the block and its data, restored; nil when anything fails to decode.
    static func decodeBlock(_ header: DecodedBlock, _ payload: [UInt8], rawCount: Int, dictionary: [UInt8]?) -> Int? {
        do {
            var block = header
            block.records = try payload.withUnsafeBytes {
                try LZ4Decoder.decompress($0, rawCount: rawCount, dictionary: dictionary)
            }
            var records = 0
            var data: [UInt8] = []
            try block.forEach { _, record in
                data.removeAll(keepingCapacity: true)
                try record.transformedData.withUnsafeBytes {
                    try DataTransform.decode($0, notificationID: record.notificationID, into: &data)
                }
                records += 1
                return true
            }
            return records
        } catch {
            return nil
        }
    }
}

func withDatabaseFile(_ path: String, _ body: (Database) throws -> Void) throws {
    let database = try Database(path: path, mode: .readWrite)
    defer { database.close() }
    try body(database)
}

/// Structure-blind mutations, AFL-style: flips, interesting bytes, inserted, deleted and
/// repeated runs, splices of two seeds, truncation. A SplitMix64 stream makes it replayable.
struct Mutator {
    private var state: UInt64
    let seeds: [[UInt8]]
    static let interesting: [UInt8] = Array(#"0019{}[]",:\"-.eE+ntfu"#.utf8) + [0x00, 0x7F, 0x80, 0xC3, 0xFF, 0x0A]

    init(seed: UInt64, seeds: [[UInt8]]) {
        state = seed
        self.seeds = seeds
    }

    mutating func random() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func below(_ bound: Int) -> Int { bound <= 1 ? 0 : Int(random() % UInt64(bound)) }

    mutating func next() -> [UInt8] {
        var bytes = seeds[below(seeds.count)]
        for _ in 0...below(4) { mutate(&bytes) }
        return bytes
    }

    mutating func mutate(_ bytes: inout [UInt8]) {
        if bytes.isEmpty {
            bytes.append(Self.interesting[below(Self.interesting.count)])
            return
        }
        let at = below(bytes.count)
        switch below(8) {
        case 0: bytes[at] ^= 1 << UInt8(below(8))
        case 1: bytes[at] = Self.interesting[below(Self.interesting.count)]
        case 2: bytes[at] = UInt8(truncatingIfNeeded: random())
        case 3: bytes.insert(Self.interesting[below(Self.interesting.count)], at: at)
        case 4: bytes.removeSubrange(at..<min(bytes.count, at + 1 + below(16)))
        case 5:
            let end = min(bytes.count, at + 1 + below(32))
            bytes.insert(contentsOf: bytes[at..<end], at: below(bytes.count))
        case 6:
            let other = seeds[below(seeds.count)]
            let from = below(other.count)
            bytes = Array(bytes[..<at]) + other[from...]
        default: bytes.removeSubrange(at...)
        }
    }
}
