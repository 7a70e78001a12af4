import Dispatch
import Foundation
import Synchronization
import Testing

@testable import TidingsSQLite
@testable import TidingsStore

final class Recorder: Sendable {
    let values = Mutex<[Int]>([])
}

/// The store's read lanes: bounded connections, a FIFO of waiting reads that hold no thread, a
/// bound on the waiting, and short reads that never wait behind scans.
@Suite struct ReadLaneTests {
    /// A store whose lanes have one connection each (and `waitingMax` waiting reads).
    static func store(waitingMax: Int = 65_536) async throws -> TemporaryStore {
        var options = StoreOptions()
        options.shortReadersMax = 1
        options.scanReadersMax = 1
        options.readsWaitingMax = waitingMax
        let temporary = try await TemporaryStore(options: options)
        _ = try await temporary.store.append([created("alice", "n-1")])
        return temporary
    }

    /// Both lanes' connections map as much of the file as the options say (0: none), and the
    /// writer maps nothing: its reads are the pages it is about to change.
    @Test(arguments: [0, 64 << 20])
    func readConnectionsMapTheFileAsConfigured(readMapBytes: Int) async throws {
        var options = StoreOptions()
        options.readMapBytes = readMapBytes
        let temporary = try await TemporaryStore(options: options)
        let mapped: @Sendable (Database) throws -> Int64 = { database in
            let statement = try database.prepare("PRAGMA mmap_size")
            _ = try statement.step()
            return statement.int64(0)
        }
        #expect(try await temporary.store.shortReads.read(mapped) == Int64(readMapBytes))
        #expect(try await temporary.store.scans.read(mapped) == Int64(readMapBytes))
        #expect(try await temporary.store.writer.perform { try mapped($0.database) } == 0)
    }

    /// Occupies the lane's only connection until `release` is signalled.
    static func occupy(_ lane: ReadLane) async throws -> (release: DispatchSemaphore, done: Task<Void, any Error>) {
        let release = DispatchSemaphore(value: 0)
        let started = DispatchSemaphore(value: 0)
        let done = Task {
            try await lane.read { _ in
                started.signal()
                release.wait()
            }
        }
        try await waitUntil("the occupying read runs") { started.wait(timeout: .now()) == .success }
        return (release, done)
    }

    static func waitUntil(_ what: String, _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("timed out waiting until \(what)")
                throw CancellationError()
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    static var threadCount: Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("Threads:") } ?? ""
        return Int(line.split(separator: "\t").last.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? "") ?? 0
    }

    @Test func waitingReadsHoldNoThreadAndRunInArrivalOrder() async throws {
        let temporary = try await Self.store()
        let lane = temporary.store.shortReads
        let (release, occupying) = try await Self.occupy(lane)
        let order = Recorder()
        var readers: [Task<Void, any Error>] = []
        // One at a time into the queue, so arrival order is known.
        for index in 0..<50 {
            readers.append(Task { try await lane.read { _ in order.values.withLock { $0.append(index) } } })
            try await Self.waitUntil("read \(index) waits") { lane.waitingCount == index + 1 }
        }
        // Then a crowd. Were each waiting read parked on a thread, the dispatch pool (a few
        // dozen threads) would be used up and nothing else could run on it: a read of the
        // other lane still does, and so does the cooperative pool.
        let threadsBefore = Self.threadCount
        for _ in 0..<2_000 { readers.append(Task { try await lane.read { _ in } }) }
        try await Self.waitUntil("every read waits") { lane.waitingCount == 2_050 }
        print("read lanes: \(Self.threadCount - threadsBefore) threads more with 2,000 reads waiting")
        #expect(try await temporary.store.verifyLog().ok, "a scan runs while 2,050 short reads wait")
        #expect(await Task { 42 }.value == 42)
        release.signal()
        try await occupying.value
        for reader in readers { try await reader.value }
        #expect(order.values.withLock { $0 } == Array(0..<50))
        #expect(lane.waitingCount == 0)
    }

    @Test func aReadBeyondTheWaitingBoundIsRefusedAndChangesNothing() async throws {
        let temporary = try await Self.store(waitingMax: 3)
        let lane = temporary.store.shortReads
        let (release, occupying) = try await Self.occupy(lane)
        let waiting = (0..<3).map { _ in Task { try await temporary.store.unread(userID: "alice").unreadCount } }
        try await Self.waitUntil("three reads wait") { lane.waitingCount == 3 }
        let refusal = await expectStoreError(.unavailable) { _ = try await temporary.store.unread(userID: "alice") }
        #expect(
            refusal?.message.contains("3 short reads are already waiting") == true, "\(String(describing: refusal))")
        #expect(lane.waitingCount == 3)
        release.signal()
        try await occupying.value
        for read in waiting { #expect(try await read.value == 1) }
    }

    @Test func aCancelledWaiterLeavesTheQueueAndTheOthersGoOn() async throws {
        let temporary = try await Self.store()
        let lane = temporary.store.shortReads
        let (release, occupying) = try await Self.occupy(lane)
        let first = Task { try await lane.read { _ in 1 } }
        try await Self.waitUntil("the first waits") { lane.waitingCount == 1 }
        let cancelled = Task { try await lane.read { _ in 2 } }
        let last = Task { try await lane.read { _ in 3 } }
        try await Self.waitUntil("three wait") { lane.waitingCount == 3 }
        cancelled.cancel()
        try await Self.waitUntil("the cancelled one left") { lane.waitingCount == 2 }
        do {
            _ = try await cancelled.value
            Issue.record("a cancelled waiting read ran")
        } catch {
            #expect(error is CancellationError)
        }
        release.signal()
        try await occupying.value
        #expect(try await first.value == 1)
        #expect(try await last.value == 3)
    }

    @Test func scansNeverDelayShortReads() async throws {
        let temporary = try await Self.store()
        let store = temporary.store!
        let (release, occupying) = try await Self.occupy(store.scans)
        let queuedScan = Task { try await store.verifyLog() }
        try await Self.waitUntil("a verification waits for the scan lane") { store.scans.waitingCount == 1 }
        // Every short read completes while the scan lane stays occupied: none waits for it.
        for _ in 0..<20 {
            #expect(try await store.unread(userID: "alice").unreadCount == 1)
            #expect(try await store.userEvents(userID: "alice", after: nil).events.count == 1)
            #expect(try await store.stats().events == 1)
        }
        #expect(store.scans.waitingCount == 1, "the verification still waits")
        release.signal()
        try await occupying.value
        #expect(try await queuedScan.value.ok)
    }

    /// The lane counts how long each read waited before it ran, as a cumulative histogram: a
    /// read behind an occupied connection shows its wait; the others barely wait at all.
    @Test func theLaneCountsHowLongEachReadWaited() async throws {
        let temporary = try await Self.store()
        let lane = temporary.store.shortReads
        let before = lane.statistics.waits
        for _ in 0..<10 { _ = try await temporary.store.unread(userID: "alice") }
        let (release, occupying) = try await Self.occupy(lane)
        let waiting = Task { try await temporary.store.unread(userID: "alice").unreadCount }
        try await Self.waitUntil("a read waits") { lane.waitingCount == 1 }
        #expect(lane.statistics.running == 1 && lane.statistics.waiting == 1)
        let heldFor = ContinuousClock.now
        // Held past the 1 s bucket, so that the waiting read lands beyond it even when a loaded
        // machine takes a few hundred milliseconds to hand the others a thread.
        try await Task.sleep(for: .milliseconds(1_200))
        release.signal()
        try await occupying.value
        #expect(try await waiting.value == 1)
        let held = ContinuousClock.now - heldFor
        let waits = lane.statistics.waits
        // Eleven reads and the occupying one; the one that waited is past 1 s, the others not.
        #expect(waits.count - before.count == 12)
        let atOneSecond = ReadWaitHistogram.bounds.firstIndex(of: .seconds(1))!
        #expect(waits.cumulativeCounts[atOneSecond] - before.cumulativeCounts[atOneSecond] == 11)
        #expect(waits.longest >= .milliseconds(1_200) && waits.longest <= held + .seconds(1))
        #expect(waits.total >= .milliseconds(1_200))
        #expect(zip(waits.cumulativeCounts, waits.cumulativeCounts.dropFirst()).allSatisfy { $0 <= $1 })
        #expect(waits.cumulativeCounts.last! <= waits.count)
        #expect(lane.statistics.running == 0 && lane.statistics.waiting == 0)
        #expect(temporary.store.readLaneStatistics.map(\.lane) == ["short", "scan"])
    }

    @Test func closingFailsTheWaitingReads() async throws {
        let temporary = try await Self.store()
        let lane = temporary.store.shortReads
        let (release, occupying) = try await Self.occupy(lane)
        let waiting = Task { try await lane.read { _ in 1 } }
        try await Self.waitUntil("a read waits") { lane.waitingCount == 1 }
        let closing = Task.detached { lane.close() }
        try await Self.waitUntil("the waiting read is failed") { lane.waitingCount == 0 }
        await expectStoreError(.unavailable) { _ = try await waiting.value }
        release.signal()
        try await occupying.value
        await closing.value
        await expectStoreError(.unavailable) { _ = try await lane.read { _ in 1 } }
    }
}
