import Testing

@testable import TidingsSQLite
@testable import TidingsStore

@Suite struct BlockCacheTests {
    func block(_ firstSeq: Int64, bytes: Int = 100) -> DecodedBlock {
        DecodedBlock(
            firstSeq: firstSeq, eventCount: 1, firstTimestamp: 0, typeMask: 1,
            records: [UInt8](repeating: UInt8(firstSeq % 251), count: bytes))
    }

    @Test func staysWithinItsCapacityAndKeepsWhatIsUsed() {
        let cache = BlockCache(capacityBytes: 1_000)
        for seq in Int64(1)...10 { cache.insert(block(seq)) }
        #expect((1...10).allSatisfy { cache.block(firstSeq: $0) != nil })
        // Blocks 1-10 were all just used; 2-10 are used again, so block 1 is the one to go.
        for seq in Int64(2)...10 { _ = cache.block(firstSeq: seq) }
        cache.insert(block(11))
        let resident = (Int64(1)...11).filter { cache.block(firstSeq: $0) != nil }
        #expect(resident.count == 10)
        #expect(resident.contains(11))
        for seq in Int64(12)...500 { cache.insert(block(seq)) }
        let left = (Int64(1)...500).compactMap { cache.block(firstSeq: $0) }
        #expect(left.count == 10)
        #expect(left.allSatisfy { $0.records.count == 100 && $0.records[0] == UInt8($0.firstSeq % 251) })
    }

    @Test func replacingABlockKeepsTheCountRight() {
        let cache = BlockCache(capacityBytes: 1_000)
        cache.insert(block(1, bytes: 600))
        cache.insert(block(1, bytes: 300))
        cache.insert(block(2, bytes: 600))
        #expect(cache.block(firstSeq: 1)?.records.count == 300)
        #expect(cache.block(firstSeq: 2)?.records.count == 600)
        cache.insert(block(3, bytes: 2_000))
        #expect(cache.block(firstSeq: 3) == nil, "a block larger than the cache is not kept")
        #expect(cache.block(firstSeq: 1) != nil)
    }
}
