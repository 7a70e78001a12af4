import Foundation
import Synchronization
import Testing
import TidingsSQLite

@testable import TidingsFanout
@testable import TidingsStore

/// The watcher decides what a process's own commits may hand to its streams directly: only
/// what continues, chain hash and all, what it handed on before. Anything else (a gap left by
/// other processes, or a new history of the log that grew back to here after a failover) goes
/// through a catch-up from the log, which finds a fork where there is one.
@Suite struct LogWatcherTests {
    /// A store in a temporary folder with a watcher and a hub over it, wired as the server does.
    final class Rig: Sendable {
        let directory = NSTemporaryDirectory() + "tidings-watcher-" + UUID().uuidString
        let store: SQLiteStore
        let hub = Hub()
        let watcher: LogWatcher
        /// What the server's commit listener handed to the hub, what it held back, the forks found.
        let record = Record()

        final class Record: Sendable {
            let handed = Mutex<[Int64]>([])
            let held = Mutex<[Int64]>([])
            let forks = Mutex<[LogWatcher.HistoryFork]>([])
        }

        init() async throws {
            store = try await SQLiteStore.open(directory: directory, options: StoreOptions())
            watcher = LogWatcher(store: store, hub: hub, interval: .seconds(3600))
            let (watcher, hub, record) = (watcher, hub, record)
            store.onCommit { events, previous in
                if watcher.committedLocally(events, after: previous) {
                    hub.publish(events)
                    record.handed.withLock { $0 += events.map(\.seq) }
                } else {
                    record.held.withLock { $0 += events.map(\.seq) }
                }
            }
            watcher.onFork { fork in record.forks.withLock { $0.append(fork) } }
            try await watcher.start()
        }

        func append(_ count: Int, from first: Int) async throws {
            _ = try await store.append(
                (first..<first + count).map {
                    NewEvent(type: .created, userID: "alice", id: nil, data: #"{"notification_id":"n-\#($0)"}"#)
                })
        }

        deinit {
            store.close()
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    func seqs(_ delivery: Subscription.Delivery) -> [Int64] {
        if case .events(let events) = delivery { return events.map(\.seq) }
        return []
    }

    @Test func commitsThatContinueWhatWasHandedOnGoStraightToTheStreams() async throws {
        let rig = try await Rig()
        let alice = rig.hub.subscribe(.user("alice"))
        try await rig.append(3, from: 1)
        try await rig.append(2, from: 4)
        #expect(rig.record.handed.withLock { $0 } == [1, 2, 3, 4, 5])
        #expect(rig.record.held.withLock { $0 }.isEmpty)
        #expect(seqs(await alice.next()) == [1, 2, 3, 4, 5])
    }

    @Test func commitsThatDoNotContinueWhatWasHandedOnAreHeldForACatchUp() async throws {
        let rig = try await Rig()
        let alice = rig.hub.subscribe(.user("alice"))
        try await rig.append(3, from: 1)
        #expect(seqs(await alice.next()) == [1, 2, 3])
        let head = try await rig.store.head()
        // Events at the very next seq, but after another event 3 than the one handed on: the
        // next of a new history. They must not reach the stream.
        let other = CursorAnchor(seq: head.seq, check: head.check ^ 0x5A5A_5A5A)
        let next = StoredEvent(
            seq: 4, streamSeq: 4, userID: "alice", id: "new-4", type: .created, timestampMilliseconds: 1,
            data: Array(#"{"notification_id":"new-4"}"#.utf8), counts: InboxCounts(unread: 4),
            anchor: CursorAnchor(seq: 4, check: 7))
        #expect(!rig.watcher.committedLocally([next], after: other))
        // A gap (other processes committed 4 and 5) is held too, and read from the log instead.
        let gap = StoredEvent(
            seq: 6, streamSeq: 6, userID: "alice", id: "id-6", type: .created, timestampMilliseconds: 1,
            data: Array(#"{"notification_id":"n-6"}"#.utf8), counts: InboxCounts(unread: 6),
            anchor: CursorAnchor(seq: 6, check: 9))
        #expect(!rig.watcher.committedLocally([gap], after: CursorAnchor(seq: 5, check: 1)))
        #expect(alice.queuedCount == 0)
        // The log itself still continues the history handed on: the catch-up finds no fork.
        try await rig.watcher.catchUp()
        #expect(rig.record.forks.withLock { $0 }.isEmpty)
        // What the log holds past the handed-on position is read and handed on in order.
        try await rig.append(2, from: 4)
        #expect(rig.record.handed.withLock { $0 } == [1, 2, 3, 4, 5])
    }

    @Test func whileTheHistoryIsInDoubtOnlyACatchUpHandsEventsOn() async throws {
        let rig = try await Rig()
        let alice = rig.hub.subscribe(.user("alice"))
        try await rig.append(2, from: 1)
        #expect(seqs(await alice.next()) == [1, 2])
        rig.watcher.historyInDoubt()
        #expect(!rig.watcher.acceptsLiveEvents)
        try await rig.append(2, from: 3)
        #expect(rig.record.held.withLock { $0 } == [3, 4])
        #expect(alice.queuedCount == 0)
        // The catch-up reads 3 and 4 after the anchor of 2: the history holds, the doubt ends.
        try await rig.watcher.catchUp()
        #expect(seqs(await alice.next()) == [3, 4])
        #expect(rig.watcher.acceptsLiveEvents)
        #expect(rig.record.forks.withLock { $0 }.isEmpty)
        try await rig.append(1, from: 5)
        #expect(rig.record.handed.withLock { $0 } == [1, 2, 5])
    }
}
