import Foundation
import Synchronization
import Testing
import TidingsTestSupport

@testable import TidingsSQLite
@testable import TidingsStore

/// The NDJSON export writes envelopes straight from the blocks; it must produce exactly the
/// bytes of the event-by-event envelope path, for every filter, across blocks and the tail.
@Suite struct ExportTests {
    /// A log of sealed blocks and a tail: explicit uuid and free-form ids, derived ids, escapes
    /// and non-ASCII text in data, timestamps across seconds and before 1970's millisecond edge.
    static func fill(_ store: SQLiteStore, clock: ClockBox) async throws {
        var random = SeededGenerator(seed: 42)
        var batch: [NewEvent] = []
        var batchSize = 1
        for index in 0..<1_500 {
            let user = "usr_\(random.next() % 7)"
            let id: String? =
                switch index % 4 {
                case 0: nil
                case 1: UUID().uuidString.lowercased()
                case 2: "evt-\(index)"
                default: nil
                }
            let event: NewEvent
            switch random.next() % 10 {
            case 0: event = read(user, "n-\(random.next() % UInt64(index + 1))", id: id)
            case 1: event = readAll(user, upTo: random.next() % 2 == 0 ? Int64(index) : nil, id: id)
            case 2:
                event = created(user, UUID().uuidString.lowercased(), id: id, title: #"Quote \" and \\ and é ✓ \u0001"#)
            default: event = created(user, "n-\(index)", id: id, title: "Title \(index)")
            }
            batch.append(event)
            if batch.count == batchSize {
                batchSize = 1 + Int(random.next() % 40)
                clock.set(clock.now() + Int64(random.next() % 1_500))
                _ = try await store.append(batch)
                batch.removeAll()
            }
        }
        _ = try await store.append(batch)
    }

    func exported(
        _ store: SQLiteStore, after: String? = nil, filter: EventFilter = EventFilter()
    ) async throws -> [UInt8] {
        let output = Mutex<[UInt8]>([])
        let count = try await store.exportNDJSON(after: after, filter: filter) { chunk, _ in
            output.withLock { $0 += chunk }
            return true
        }
        let bytes = output.withLock { $0 }
        #expect(bytes.filter { $0 == 10 }.count == count)
        return bytes
    }

    func expected(_ events: [StoredEvent], _ store: SQLiteStore) -> [UInt8] {
        var out: [UInt8] = []
        for event in events {
            EnvelopeJSON.append(event, cursor: store.cursor(of: event, userStream: false), to: &out)
            out.append(10)
        }
        return out
    }

    /// How an export is cut into runs: the defaults (a run or two here), and runs so small that
    /// every event, block or index entry ends one, so every resume point is crossed.
    static let runSizes: [(bytes: Int, blocks: Int, entries: Int)] = [
        (256 * 1024, 256, 1_000), (1, 1, 1), (3_000, 2, 7), (70_000, 1_000, 64),
    ]

    @Test(arguments: 0..<runSizes.count)
    func exportMatchesTheEnvelopePathForEveryFilter(runSize: Int) async throws {
        let clock = ClockBox(1_700_000_000_123)
        var options = StoreOptions()
        options.clock = { clock.now() }
        (options.exportRunBytes, options.exportRunBlocks, options.exportRunEntries) = Self.runSizes[runSize]
        let temporary = try await TemporaryStore(options: options)
        let store = temporary.store!
        try await Self.fill(store, clock: clock)
        let all = try await store.allEventsForTests()
        let head = Int64(all.count)
        #expect(head > 1_000, "reads of unknown notifications are no-ops; most events land")
        let sealed = try await store.withSnapshot { $0.snapshot.sealedSeq }
        #expect(sealed > 0 && sealed < head, "the log must have blocks and a tail")

        #expect(try await exported(store) == expected(all, store))
        for after in [Int64(0), 1, 17, sealed - 1, sealed, sealed + 3, head - 1, head] {
            let got = try await exported(store, after: store.unanchoredAllCursor(seq: after))
            #expect(got == expected(all.filter { $0.seq > after }, store), "after \(after)")
        }
        let middle = all[700].timestampMilliseconds
        let filters: [EventFilter] = [
            EventFilter(types: [.read]), EventFilter(types: [.created, .readAll]),
            EventFilter(userID: "usr_3"), EventFilter(userID: "usr_nobody"),
            EventFilter(since: middle), EventFilter(until: middle),
            EventFilter(types: [.readAll], userID: "usr_1", since: all[200].timestampMilliseconds, until: middle),
        ]
        for filter in filters {
            let want = all.filter { event in
                (filter.types.isEmpty || filter.types.contains(event.type))
                    && (filter.userID == nil || filter.userID == event.userID)
                    && (filter.since.map { event.timestampMilliseconds >= $0 } ?? true)
                    && (filter.until.map { event.timestampMilliseconds < $0 } ?? true)
            }
            #expect(try await exported(store, filter: filter) == expected(want, store), "\(filter)")
        }
    }

    @Test func exportStopsWhenTheConsumerSaysSo() async throws {
        let clock = ClockBox(1_700_000_000_000)
        var options = StoreOptions()
        options.clock = { clock.now() }
        let temporary = try await TemporaryStore(options: options)
        let store = temporary.store!
        let long = String(repeating: "x", count: 500)
        for batch in 0..<4 {
            _ = try await store.append((0..<500).map { created("alice", "n-\(batch)-\($0)", title: long) })
        }
        let chunks = Mutex(0)
        let count = try await store.exportNDJSON(after: nil) { chunk, lastSeq in
            #expect(chunk.count >= StoreOptions().exportRunBytes)
            #expect(chunk.last == 10)
            #expect(lastSeq > 0)
            return chunks.withLock {
                $0 += 1
                return $0 < 2
            }
        }
        #expect(chunks.withLock { $0 } == 2)
        #expect(count > 0 && count < 2_000)
    }

    /// An export ends at the head it started at, however much is appended while it is read, and
    /// between its chunks it holds no connection: with one connection per lane, ten exports
    /// that each read one chunk and then stop leave short reads and an eleventh export alone.
    @Test func aStalledExportHoldsNothingAndEndsAtItsStartingHead() async throws {
        var options = StoreOptions()
        options.shortReadersMax = 1
        options.scanReadersMax = 1
        options.exportRunBytes = 4_096
        let temporary = try await TemporaryStore(options: options)
        let store = temporary.store!
        for batch in 0..<10 {
            _ = try await store.append((0..<100).map { created("u\($0 % 5)", "n-\(batch)-\($0)") })
        }
        var stalled: [LogExport.Iterator] = []
        for _ in 0..<10 {
            var iterator = try await store.export(after: nil).makeAsyncIterator()
            #expect(try await iterator.next() != nil)
            stalled.append(iterator)
        }
        _ = try await store.append((0..<100).map { created("u1", "late-\($0)") })
        let started = ContinuousClock.now
        #expect(try await store.unread(userID: "u1").unreadCount == 300)
        #expect(try await store.userEvents(userID: "u2", after: nil).events.count == 100)
        #expect(try await store.verifyLog().ok)
        #expect(ContinuousClock.now - started < .seconds(5), "nothing waited for the stalled exports")
        // Each stalled export goes on where it stopped and ends at the head it started at.
        for index in stalled.indices {
            var lines = 0
            var lastSeq: Int64 = 0
            while let chunk = try await stalled[index].next() {
                lines += chunk.bytes.filter { $0 == 10 }.count
                lastSeq = chunk.lastSeq
            }
            #expect(lastSeq == 1_000)
            #expect(lines < 1_000, "the first chunk was read before")
        }
        #expect(try await exported(store).filter { $0 == 10 }.count == 1_100)
    }

    @Test func exportOfAnEmptyStoreWritesNothing() async throws {
        let temporary = try await TemporaryStore()
        #expect(try await exported(temporary.store).isEmpty)
    }
}
