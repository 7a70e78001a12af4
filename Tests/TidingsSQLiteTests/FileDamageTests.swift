import Foundation
import Testing
import TidingsTestSupport

@testable import TidingsSQLite
@testable import TidingsStore

/// Damage below SQLite: bytes of the database file and its WAL changed or cut off, as a torn
/// write or a failing disk would. The store either opens with a consistent prefix of the log
/// (SQLite drops WAL frames whose checksums fail) or refuses with an error naming the damage and
/// `tidings verify`; it never serves a damaged log as if it were whole.
@Suite struct FileDamageTests {
    static func events(_ count: Int, seed: UInt64) -> [NewEvent] {
        var corpus = CorpusGenerator(seed: seed, userCount: 40)
        return (0..<count).map { _ in
            let event = corpus.next()
            return NewEvent(type: event.type, userID: event.userID, data: event.data)
        }
    }

    /// A crash image: the database and WAL files copied while the store is open, with commits
    /// in the WAL that no checkpoint has moved into the database.
    static func crashImage() async throws -> (directory: String, headSeq: Int64) {
        var options = StoreOptions()
        options.blockTargetBytes = 1_024
        options.checkpointEvents = 1 << 30
        let source = try await TemporaryStore(options: options)
        let all = events(400, seed: 5)
        for start in stride(from: 0, to: all.count, by: 20) {
            _ = try await source.store.append(Array(all[start..<(start + 20)]))
        }
        let head = try await source.store.headSeq()
        let image = NSTemporaryDirectory() + "tidings-image-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: image, withIntermediateDirectories: true)
        for suffix in ["", "-wal"] {
            try FileManager.default.copyItem(
                atPath: source.databasePath + suffix, toPath: image + "/" + SQLiteStore.databaseFileName + suffix)
        }
        source.store.close()
        return (image, head)
    }

    static func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
    }

    @Test func aCrashImageOpensWhole() async throws {
        let (image, head) = try await Self.crashImage()
        defer { try? FileManager.default.removeItem(atPath: image) }
        #expect(Self.fileSize(image + "/" + SQLiteStore.databaseFileName + "-wal") > 100_000, "commits wait in the WAL")
        let store = try await SQLiteStore.open(directory: image)
        defer { store.close() }
        #expect(try await store.headSeq() == head)
        #expect(try await store.verifyLog().ok)
        #expect(try await store.verifyProjections().ok)
    }

    /// A WAL cut at arbitrary points, frame boundaries or not: what opens is a prefix of the
    /// log, whole: chain, blocks and projection agree, and appends go on after it.
    @Test(arguments: [0.1, 0.37, 0.5, 0.73, 0.999])
    func aTruncatedWALLeavesAConsistentPrefix(fraction: Double) async throws {
        let (image, head) = try await Self.crashImage()
        defer { try? FileManager.default.removeItem(atPath: image) }
        let wal = image + "/" + SQLiteStore.databaseFileName + "-wal"
        let size = Self.fileSize(wal)
        #expect(truncate(wal, off_t(Double(size) * fraction)) == 0)
        let store = try await SQLiteStore.open(directory: image)
        defer { store.close() }
        let opened = try await store.headSeq()
        #expect(opened <= head)
        let log = try await store.verifyLog()
        #expect(log.ok, "\(log)")
        #expect(log.headSeq == opened)
        #expect(try await store.verifyProjections().ok)
        let more = try await store.append(Self.events(5, seed: 99))
        #expect(more.count == 5)
        #expect(try await store.verifyLog().ok)
    }

    /// Bytes of a block's compressed payload changed in the database file itself: opening
    /// may succeed (the tail is intact), but verify names the damaged block's first event, and
    /// reading that block fails with an error instead of returning wrong events: through the
    /// memory map the read connections use, and through `pread` with the map turned off.
    @Test(arguments: [0, StoreOptions().readMapBytes])
    func aCorruptedBlockPageIsPinpointed(readMapBytes: Int) async throws {
        var options = StoreOptions()
        options.blockTargetBytes = 1_024
        options.readMapBytes = readMapBytes
        let temporary = try await TemporaryStore(options: options)
        let appended = Self.events(300, seed: 8)
        _ = try await temporary.store.append(appended)
        temporary.store.close()
        var target: (firstSeq: Int64, payload: [UInt8]) = (0, [])
        try withDatabase(temporary.databasePath) { database in
            let statement = try database.prepare(
                "SELECT first_seq, payload FROM blocks ORDER BY first_seq LIMIT 1 OFFSET 3")
            _ = try statement.step()
            target = (statement.int64(0), statement.bytes(1))
        }
        var file = try Array(Data(contentsOf: URL(fileURLWithPath: temporary.databasePath)))
        let needle = Array(target.payload.prefix(48))
        let at = try #require(Self.find(needle, in: file), "the payload is in the file")
        file[at + 40] ^= 0x5A
        try Data(file).write(to: URL(fileURLWithPath: temporary.databasePath))
        let store = try await SQLiteStore.open(directory: temporary.directory, options: options)
        defer { store.close() }
        let log = try await store.verifyLog()
        #expect(!log.ok)
        #expect(log.firstBadSeq == target.firstSeq, "\(log)")
        #expect(log.problem != nil)
        await #expect(throws: StoreError.self) {
            _ = try await store.allEvents(after: nil, limit: 1_000)
        }
        // A per-user read of an event in that block finds it by the block cache's path.
        let user = appended[Int(target.firstSeq) - 1].userID
        let error = await #expect(throws: StoreError.self) {
            _ = try await store.userEvents(userID: user, after: nil, limit: 1_000)
        }
        #expect(
            error?.message.contains("block at seq \(target.firstSeq) fails its checksum") == true,
            "\(String(describing: error))")
    }

    /// A b-tree page's header overwritten: SQLite's own checks see it; the store reports
    /// a damaged database and verify says so rather than crashing or answering wrongly.
    @Test func aCorruptedTreePageIsReportedAsDamage() async throws {
        var options = StoreOptions()
        options.blockTargetBytes = 1_024
        options.pageSizeBytes = 4_096
        let temporary = try await TemporaryStore(options: options)
        _ = try await temporary.store.append(Self.events(400, seed: 9))
        temporary.store.close()
        let path = temporary.databasePath
        let pages = Self.fileSize(path) / 4_096
        try #require(pages > 8)
        var file = try Array(Data(contentsOf: URL(fileURLWithPath: path)))
        // Every page after the first few: garbage where SQLite keeps the page type and cell count.
        for page in stride(from: 3, to: pages, by: 1) {
            for offset in 0..<8 { file[page * 4_096 + offset] = 0xEE }
        }
        try Data(file).write(to: URL(fileURLWithPath: path))
        do {
            let store = try await SQLiteStore.open(directory: temporary.directory)
            defer { store.close() }
            let log = try await store.verifyLog()
            #expect(!log.ok, "verify sees the damage")
        } catch let error as StoreError {
            #expect(error.message.contains("damaged") || error.message.contains("malformed"), "\(error.message)")
        } catch let error as SQLiteError {
            #expect(error.isCorruption, "\(error)")
        }
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count else { return nil }
        for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
            if haystack[start..<(start + needle.count)].elementsEqual(needle) { return start }
        }
        return nil
    }
}
