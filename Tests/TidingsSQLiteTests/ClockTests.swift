import Foundation
import Testing

@testable import TidingsSQLite
@testable import TidingsStore

/// The wall clock jumps backwards (NTP step, a VM restored from a snapshot, an operator's
/// mistake), also across a restart: seq order, `ts` order along seq, cursors and time filters
/// are unaffected, and the chain verifies.
@Suite struct ClockTests {
    @Test func aClockThatJumpsBackBreaksNothing() async throws {
        let clock = ClockBox(1_800_000_000_000)
        var options = StoreOptions()
        options.blockTargetBytes = 512
        options.clock = { clock.now() }
        let temporary = try await TemporaryStore(options: options)
        var cursors: [String] = []
        // Forward, back an hour, back to 1970, forward again: 4 x 25 events.
        for (phase, now) in [1_800_000_000_000, 1_799_996_400_000, 5, 1_800_000_001_000].enumerated() {
            clock.set(Int64(now))
            for index in 0..<25 {
                let result = try await temporary.store.append([created("alice", "n-\(phase)-\(index)")])
                cursors.append(temporary.store.unanchoredUserCursor("alice", streamSeq: result[0].event!.streamSeq))
            }
        }
        try await temporary.reopen(options: options)
        clock.set(1_000)
        _ = try await temporary.store.append([created("alice", "n-after-restart")])
        let store = temporary.store!
        let all = try await store.allEvents(after: nil, limit: 1_000).events
        #expect(all.map(\.seq) == (1...101).map { Int64($0) })
        #expect(zip(all, all.dropFirst()).allSatisfy { $0.timestampMilliseconds <= $1.timestampMilliseconds })
        #expect(all.first!.timestampMilliseconds == 1_800_000_000_000)
        #expect(all.last!.timestampMilliseconds >= 1_800_000_001_000, "ts never goes back, not even after a restart")
        // Every cursor taken along the way still resumes exactly after its event.
        for (index, cursor) in cursors.enumerated() {
            let page = try await store.userEvents(userID: "alice", after: cursor, limit: 1_000)
            #expect(page.events.first?.streamSeq == Int64(index + 2))
            #expect(page.events.count == 101 - (index + 1))
        }
        // A time window over the stalled stretch holds what was appended while the clock was behind.
        let stalled = try await store.allEvents(
            after: nil, filter: EventFilter(since: 1_800_000_000_000, until: 1_800_000_000_001), limit: 1_000)
        #expect(stalled.events.count == 75, "events appended while the clock was behind share the last ts")
        #expect(try await store.verifyLog().ok)
        #expect(try await store.verifyProjections().ok)
    }
}
