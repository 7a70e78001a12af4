internal import CHiredis
import Foundation
import Logging
import Synchronization
import Testing
import TidingsTestSupport

@testable import TidingsFanout
@testable import TidingsStore

func event(_ seq: Int64, user: String = "alice", streamSeq: Int64? = nil, unread: Int64? = 1) -> StoredEvent {
    StoredEvent(
        seq: seq, streamSeq: streamSeq ?? seq, userID: user, id: "id-\(seq)", type: .created,
        timestampMilliseconds: 1_800_000_000_000 + seq, data: Array(#"{"notification_id":"n-\#(seq)"}"#.utf8),
        counts: unread.map { InboxCounts(unread: $0, unseen: $0) },
        anchor: CursorAnchor(seq: seq, check: UInt32(truncatingIfNeeded: seq &* 2_654_435_761)))
}

@Suite struct HubTests {
    @Test func eventsReachTheirUsersAndTheAllStream() async {
        let hub = Hub(subscriptionCapacity: 8)
        let alice = hub.subscribe(.user("alice"))
        let bob = hub.subscribe(.user("bob"))
        let auditor = hub.subscribe(.all)
        hub.publish([event(1), event(2, user: "bob"), event(3)])
        guard case .events(let forAlice) = await alice.next(), case .events(let forBob) = await bob.next(),
            case .events(let forAll) = await auditor.next()
        else {
            Issue.record("expected events")
            return
        }
        #expect(forAlice.map(\.seq) == [1, 3])
        #expect(forBob.map(\.seq) == [2])
        #expect(forAll.map(\.seq) == [1, 2, 3])
        #expect(hub.subscribedUsers == ["alice", "bob"])
        #expect(hub.followsAll)
        hub.unsubscribe(bob)
        #expect(hub.subscribedUsers == ["alice"])
        #expect(hub.subscriptionCount == 2)
    }

    @Test func aFullQueueOverflowsInsteadOfGrowing() async {
        let hub = Hub(subscriptionCapacity: 4)
        let slow = hub.subscribe(.user("alice"))
        hub.publish((1...10).map { event($0) })
        guard case .overflowed = await slow.next() else {
            Issue.record("expected an overflow")
            return
        }
        slow.resumeLive()
        hub.publish([event(11)])
        guard case .events(let events) = await slow.next() else {
            Issue.record("expected events after resuming")
            return
        }
        #expect(events.map(\.seq) == [11])
    }

    @Test func nudgeAndCloseWakeAWaitingReader() async throws {
        let hub = Hub()
        let subscription = hub.subscribe(.user("alice"))
        let first = Task { await subscription.next() }
        try await poll("the reader waits") { subscription.hasWaitingReader }
        subscription.nudge()
        guard case .nudged = await first.value else {
            Issue.record("expected a nudge")
            return
        }
        let second = Task { await subscription.next() }
        try await poll("the reader waits again") { subscription.hasWaitingReader }
        subscription.close(.shutdown)
        guard case .closed(let reason) = await second.value else {
            Issue.record("expected the close")
            return
        }
        #expect(reason == .shutdown)
        // Events offered after the close are not queued (nor offered at all: the hub forgets a
        // closed subscription when the connection unsubscribes, until then it skips it).
        hub.publish([event(1), event(2)])
        #expect(subscription.queuedCount == 0)
        guard case .closed = await subscription.next() else {
            Issue.record("a closed subscription delivers only its close")
            return
        }
    }

    @Test func anOverflowedQueueHoldsNothingUntilItResumes() async {
        let hub = Hub(subscriptionCapacity: 2)
        let subscription = hub.subscribe(.user("alice"))
        hub.publish([event(1), event(2), event(3)])
        #expect(subscription.queuedCount == 0, "the overflow emptied the queue")
        hub.publish([event(4)])
        #expect(subscription.queuedCount == 0, "nothing is queued while overflowed")
        guard case .overflowed = await subscription.next() else {
            Issue.record("expected the overflow")
            return
        }
        subscription.resumeLive()
        hub.publish([event(5)])
        #expect(subscription.queuedCount == 1)
    }
}

@Suite struct EventMessageTests {
    static let key = Array(repeating: UInt8(7), count: 32)

    @Test func roundTrips() {
        for original in [
            event(1), event(99, user: "u:1@x", streamSeq: 3, unread: nil), event(Int64.max / 4, unread: 0),
        ] {
            let decoded = EventMessage.decode(EventMessage.encode(original, key: Self.key), key: Self.key)
            #expect(decoded == original)
            // The anchor rides along: the receiving node's cursors carry the same history.
            #expect(decoded?.anchor == original.anchor)
        }
    }

    @Test func anyDamageOrAnotherKeyIsRejectedNeverACrash() {
        let message = EventMessage.encode(event(42), key: Self.key)
        #expect(EventMessage.decode(message, key: Array(repeating: 8, count: 32)) == nil)
        var random = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            var damaged = message
            switch Int.random(in: 0..<3, using: &random) {
            case 0:
                damaged[Int.random(in: 0..<damaged.count, using: &random)] ^= UInt8.random(in: 1...255, using: &random)
            case 1: damaged.removeLast(Int.random(in: 1...damaged.count, using: &random))
            default:
                damaged.insert(
                    UInt8.random(in: 0...255, using: &random), at: Int.random(in: 0...damaged.count, using: &random))
            }
            #expect(EventMessage.decode(damaged, key: Self.key) == nil)
        }
        for _ in 0..<5_000 {
            let junk = (0..<Int.random(in: 0..<200, using: &random)).map { _ in
                UInt8.random(in: 0...255, using: &random)
            }
            #expect(EventMessage.decode(junk, key: Self.key) == nil)
        }
    }
}

/// Random RESP through hiredis's reader and our reply copying: replies come out or the reader
/// reports an error; it never crashes and never leaks (replies are freed as they are copied).
@Suite struct RESPFuzzTests {
    static let seeds: [[UInt8]] = [
        "+OK\r\n", "-ERR bad\r\n", ":42\r\n", "$5\r\nhello\r\n", "$-1\r\n",
        "*3\r\n$7\r\nmessage\r\n$3\r\nch1\r\n$2\r\nhi\r\n",
        "*2\r\n*1\r\n:1\r\n$0\r\n\r\n", "*-1\r\n",
    ].map { Array($0.utf8) }

    /// Feeds `bytes` (then `more`, if given) to a hiredis reader and takes every reply.
    func parse(_ bytes: [UInt8], then more: [UInt8]? = nil) -> (replies: [RedisReply], failed: Bool) {
        guard let reader = redisReaderCreate() else { return ([], true) }
        defer { redisReaderFree(reader) }
        func feed(_ bytes: [UInt8]) -> Bool {
            bytes.withUnsafeBufferPointer { buffer in
                buffer.baseAddress.map {
                    redisReaderFeed(reader, UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self), buffer.count)
                } ?? REDIS_OK
            } == REDIS_OK
        }
        var replies: [RedisReply] = []
        func take() -> Bool {
            while replies.count < 10_000 {
                var raw: UnsafeMutableRawPointer?
                guard redisReaderGetReply(reader, &raw) == REDIS_OK else { return false }
                guard let raw else { return true }
                replies.append(RedisReply(raw.assumingMemoryBound(to: redisReply.self)))
                freeReplyObject(raw)
            }
            return true
        }
        guard feed(bytes), take() else { return (replies, true) }
        if let more {
            guard feed(more), take() else { return (replies, true) }
        }
        return (replies, false)
    }

    @Test func seedsParseToWhatTheySay() {
        let parsed = parse(Self.seeds.flatMap { $0 }).replies
        #expect(parsed.count == Self.seeds.count)
        #expect(parsed[0] == .status("OK"))
        #expect(parsed[1] == .error("ERR bad"))
        #expect(parsed[2] == .integer(42))
        #expect(parsed[3] == .string(Array("hello".utf8)))
        #expect(parsed[4] == .null)
        #expect(
            parsed[5]
                == .array([.string(Array("message".utf8)), .string(Array("ch1".utf8)), .string(Array("hi".utf8))]))
    }

    /// Seeded, so a failing input can be made again: the seed is in the test's output.
    @Test(arguments: [UInt64(20_261_201), 7, 1_234_567])
    func mutatedRESPNeverCrashes(seed: UInt64) {
        var random = SeededGenerator(seed: seed)
        let alphabet = Array("+-:$*\r\n0123456789-abc".utf8)
        for _ in 0..<30_000 {
            var bytes = Self.seeds[Int.random(in: 0..<Self.seeds.count, using: &random)]
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                let position = Int.random(in: 0...bytes.count, using: &random)
                let byte =
                    Bool.random(using: &random)
                    ? alphabet.randomElement(using: &random)! : UInt8.random(in: 0...255, using: &random)
                switch Int.random(in: 0..<3, using: &random) {
                case 0 where position < bytes.count: bytes[position] = byte
                case 1 where position < bytes.count: bytes.remove(at: position)
                default: bytes.insert(byte, at: position)
                }
            }
            // Every reply the reader hands out is one it could copy, and an error is reported,
            // never a crash; fed again in two parts split at a random point, the reader gives the
            // same replies (it must hold partial replies across feeds).
            let whole = parse(bytes)
            let split = Int.random(in: 0...bytes.count, using: &random)
            let parts = parse(Array(bytes[..<split]), then: Array(bytes[split...]))
            #expect(
                parts.replies == whole.replies && parts.failed == whole.failed,
                "seed \(seed): \(bytes) split at \(split)")
        }
    }
}

@Suite(.serialized) struct RedisBridgeTests {
    /// The subscription's next delivery, or `.nudged` once `wait` has passed without one.
    func next(_ subscription: Subscription, within wait: Duration) async -> Subscription.Delivery {
        let timer = Task {
            try await Task.sleep(for: wait)
            subscription.nudge()
        }
        defer { timer.cancel() }
        return await subscription.next()
    }

    /// Publishes from `from` until `subscription` (of a hub behind `to`) gets an event: the
    /// subscription reaches Redis some time after the hub asks for it. Returns the seqs that
    /// arrived in that delivery.
    func deliveredOnceSubscribed(
        from: RedisBridge, to subscription: Subscription, user: String, firstSeq: Int64
    ) async throws -> [Int64] {
        // Both bounds: 30 s, and 200 tries (10 s of waiting), because a test run that keeps
        // the task pool busy elsewhere can hold this loop back for seconds between tries.
        let deadline = ContinuousClock.now + .seconds(30)
        var seq = firstSeq
        while ContinuousClock.now < deadline || seq - firstSeq < 200 {
            from.publish([event(seq, user: user)])
            seq += 1
            if case .events(let events) = await next(subscription, within: .milliseconds(50)) {
                return events.map(\.seq)
            }
        }
        Issue.record("nothing arrived through Redis in \(seq - firstSeq) tries over 30 s")
        return []
    }

    @Test func twoBridgesCarryEventsBothWays() async throws {
        let redis = try RedisProcess()
        let url = try #require(RedisURL(redis.url))
        let key = Array(repeating: UInt8(3), count: 32)
        var logger = Logger(label: "bridge-test")
        logger.logLevel = .critical
        let hubA = Hub()
        let hubB = Hub()
        let bridgeA = RedisBridge(url: url, epoch: "00000000000000aa", key: key, hub: hubA, logger: logger)
        let bridgeB = RedisBridge(url: url, epoch: "00000000000000aa", key: key, hub: hubB, logger: logger)
        bridgeA.start()
        bridgeB.start()
        defer {
            bridgeA.stop()
            bridgeB.stop()
        }
        // A to B, and B to A, each to a subscriber of the receiving hub.
        let onB = hubB.subscribe(.user("alice"))
        let onA = hubA.subscribe(.user("bob"))
        let toB = try await deliveredOnceSubscribed(from: bridgeA, to: onB, user: "alice", firstSeq: 1)
        #expect(!toB.isEmpty && toB.allSatisfy { $0 >= 1 && $0 < 10_000 })
        let toA = try await deliveredOnceSubscribed(from: bridgeB, to: onA, user: "bob", firstSeq: 10_000)
        #expect(!toA.isEmpty && toA.allSatisfy { $0 >= 10_000 })
        #expect(bridgeA.status.publisherConnected && bridgeA.status.subscriberConnected)
        #expect(bridgeB.status.publisherConnected && bridgeB.status.subscriberConnected)

        // Events for a user nobody on B follows never reach B: B subscribes to its users'
        // channels only. Redis delivers one publisher's messages in order: once alice's marker
        // has arrived, everything published before it has too, so the count is exact.
        func collect(until seq: Int64) async -> [Int64] {
            var seen: [Int64] = []
            let deadline = ContinuousClock.now + .seconds(30)
            while !seen.contains(seq), ContinuousClock.now < deadline {
                if case .events(let events) = await next(onB, within: .milliseconds(100)) { seen += events.map(\.seq) }
            }
            return seen
        }
        bridgeA.publish([event(19_999, user: "alice")])
        #expect(await collect(until: 19_999).contains(19_999))
        let before = bridgeB.status.received
        bridgeA.publish([event(20_000, user: "nobody"), event(20_001, user: "alice")])
        #expect(await collect(until: 20_001) == [20_001])
        #expect(bridgeB.status.received == before + 1, "nobody's event was not received")

        // Redis goes away and comes back: the bridges reconnect on their own.
        redis.kill()
        try await poll("B sees Redis go", timeout: .seconds(10)) { !bridgeB.status.subscriberConnected }
        try redis.start()
        try await poll("B reconnects", timeout: .seconds(15)) { bridgeB.status.subscriberConnected }
        #expect(bridgeB.status.reconnects >= 2)
        // And carries events again, both ways.
        #expect(!(try await deliveredOnceSubscribed(from: bridgeA, to: onB, user: "alice", firstSeq: 30_000)).isEmpty)
        #expect(!(try await deliveredOnceSubscribed(from: bridgeB, to: onA, user: "bob", firstSeq: 40_000)).isEmpty)
    }
}

/// Waits until `condition` holds, checking every 10 ms; fails the test after `timeout`.
func poll(
    _ what: String, timeout: Duration = .seconds(5), sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: () -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        guard ContinuousClock.now < deadline else {
            Issue.record("timed out waiting until \(what)", sourceLocation: sourceLocation)
            return
        }
        try await Task.sleep(for: .milliseconds(10))
    }
}
