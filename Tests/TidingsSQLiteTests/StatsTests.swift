import Foundation
import Testing

@testable import TidingsSQLite
@testable import TidingsStore

/// `stats()` keeps running totals over the sealed blocks and reads only the blocks sealed since
/// its last call; its figures must equal a count from scratch, also when another store instance
/// (another process) sealed the blocks.
@Suite struct StatsTests {
    @Test func emptyStoreHasNothingAndARatioOfOne() async throws {
        let temporary = try await TemporaryStore()
        let stats = try await temporary.store.stats()
        #expect(stats.events == 0 && stats.users == 0 && stats.blocks == 0)
        #expect(stats.rawBytes == 0 && stats.storedBytes == 0)
        #expect(stats.compressionRatio == 1.0)
    }

    @Test func runningTotalsEqualACountFromScratch() async throws {
        var options = StoreOptions()
        options.blockTargetBytes = 512
        options.durability = .normal
        let temporary = try await TemporaryStore(options: options)
        let other = try await SQLiteStore.open(directory: temporary.directory, options: options)
        defer { other.close() }
        var previousBlocks: Int64 = 0
        for round in 0..<12 {
            // Alternate the instance that appends: the other one's blocks count too.
            let writer = round % 3 == 2 ? other : temporary.store!
            let events = (0..<(round * 7 + 3)).map { created("user-\($0 % 5)", "n-\(round)-\($0)") }
            _ = try await writer.append(events)
            let running = try await temporary.store.stats()
            let scratch = try Self.countFromScratch(temporary.databasePath)
            #expect(running.events == Int64((0...round).reduce(0) { $0 + $1 * 7 + 3 }), "round \(round)")
            #expect(running.blocks == scratch.blocks, "round \(round)")
            #expect(running.rawBytes == scratch.rawBytes, "round \(round)")
            #expect(running.storedBytes == scratch.storedBytes, "round \(round)")
            #expect(running.users == (round == 0 ? 3 : 5))
            #expect(running.blocks >= previousBlocks)
            previousBlocks = running.blocks
        }
        #expect(previousBlocks > 5, "the rounds sealed blocks")
    }

    /// Every block and tail row read and summed again, as `stats()` did before it kept totals.
    static func countFromScratch(_ path: String) throws -> (blocks: Int64, rawBytes: Int64, storedBytes: Int64) {
        var out: (Int64, Int64, Int64) = (0, 0, 0)
        try withDatabase(path) { database in
            let statement = try database.prepare(
                """
                SELECT (SELECT count(*) FROM blocks),
                    (SELECT COALESCE(sum(raw_bytes), 0) FROM blocks) + (SELECT COALESCE(sum(raw_bytes), 0) FROM tail),
                    (SELECT COALESCE(sum(length(payload) + length(checks) + length(end_hash)), 0) FROM blocks)
                        + (SELECT COALESCE(sum(length(record) + length(hash)), 0) FROM tail)
                """)
            _ = try statement.step()
            out = (statement.int64(0), statement.int64(1), statement.int64(2))
        }
        return out
    }
}
