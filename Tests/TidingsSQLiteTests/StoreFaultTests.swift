import Foundation
import Synchronization
import Testing

@testable import TidingsSQLite
@testable import TidingsStore

/// The store's own I/O that no caller waits for: a failing projection checkpoint is reported
/// (once per run of failures, and its recovery), and the projection's memory stays bounded by
/// refusing appends at the overlay's bound until a checkpoint succeeds.
@Suite struct StoreFaultTests {
    struct DiskFull: Error, CustomStringConvertible {
        var description: String { "database or disk is full (SQLITE_FULL)" }
    }

    @Test func aFailingCheckpointIsReportedAndBoundsTheOverlayUntilItRecovers() async throws {
        let failing = Atomic<Bool>(true)
        var options = StoreOptions()
        options.checkpointEvents = 100
        options.overlayEventsMax = 300
        options.beforeCheckpoint = {
            if failing.load(ordering: .relaxed) { throw DiskFull() }
        }
        let temporary = try await TemporaryStore(options: options)
        let store = temporary.store!
        let faults = Mutex<[StoreFault]>([])
        store.onFault { fault in faults.withLock { $0.append(fault) } }

        var appended = 0
        var refusal: StoreError?
        for batch in 0..<10 {
            do {
                _ = try await store.append((0..<50).map { created("alice", "n-\(batch)-\($0)") })
                appended += 50
            } catch let error as StoreError {
                refusal = error
                break
            }
        }
        // Checkpoints were due from 100 events on and failed; at 300 the writer refuses.
        #expect(appended == 300)
        let refused = try #require(refusal)
        #expect(refused.code == .unavailable)
        #expect(refused.message.contains("checkpoint") && refused.message.contains("disk is full"), "\(refused)")
        #expect(store.context.overlay.withLock { $0.eventsSinceBase } == 300, "the overlay stopped at its bound")
        let reported = faults.withLock { $0 }
        #expect(reported.allSatisfy { $0.operation == .projectionCheckpoint && !$0.isRecovery })
        #expect(reported.map(\.consecutiveFailures) == Array(1...reported.count), "one run of failures")
        #expect(reported.first?.message.contains("disk is full") == true)
        // Reads go on meanwhile, and the refused batch left nothing behind.
        #expect(try await store.unread(userID: "alice").unreadCount == 300)
        #expect(try await store.headSeq() == 300)

        // The disk has room again: the next append checkpoints first, then goes on.
        failing.store(false, ordering: .relaxed)
        _ = try await store.append([created("alice", "after")])
        #expect(store.context.overlay.withLock { $0.eventsSinceBase } <= 1)
        #expect(faults.withLock { $0.last?.isRecovery } == true)
        #expect(faults.withLock { $0.filter(\.isRecovery).count } == 1)
        #expect(try await store.unread(userID: "alice").unreadCount == 301)
        #expect(try await store.verifyProjections().ok)
        try await temporary.reopen()
        #expect(try await temporary.store.unread(userID: "alice").unreadCount == 301)
    }
}
