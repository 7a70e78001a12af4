internal import CHiredis
import Foundation
import Logging
import Synchronization
import Testing
import TidingsBench

@testable import TidingsFanout
@testable import TidingsStore

func event(_ seq: Int64, user: String = "alice", streamSeq: Int64? = nil, unread: Int64? = 1) -> StoredEvent {
    StoredEvent(
        seq: seq, streamSeq: streamSeq ?? seq, userID: user, id: "id-\(seq)", type: .created,
        timestampMilliseconds: 1_800_000_000_000 + seq, data: Array(#"{"notification_id":"n-\#(seq)"}"#.utf8),
        unreadCount: unread)
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

    @Test func nudgeAndCloseWakeAWaitingReader() async {
        let hub = Hub()
        let subscription = hub.subscribe(.user("alice"))
        async let first = subscription.next()
        try? await Task.sleep(for: .milliseconds(20))
        subscription.nudge()
        guard case .nudged = await first else {
            Issue.record("expected a nudge")
            return
        }
        subscription.close(.shutdown)
        guard case .closed(let reason) = await subscription.next() else {
            Issue.record("expected the close")
            return
        }
        #expect(reason == .shutdown)
        // Events offered after the close are not queued.
        hub.publish([event(1)])
        #expect(subscription.isClosed)
    }
}

@Suite struct EventMessageTests {
    static let key = Array(repeating: UInt8(7), count: 32)

    @Test func roundTrips() {
        for original in [
            event(1), event(99, user: "u:1@x", streamSeq: 3, unread: nil), event(Int64.max / 4, unread: 0),
        ] {
            #expect(EventMessage.decode(EventMessage.encode(original, key: Self.key), key: Self.key) == original)
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

    func parse(_ bytes: [UInt8]) -> (replies: [RedisReply], failed: Bool) {
        guard let reader = redisReaderCreate() else { return ([], true) }
        defer { redisReaderFree(reader) }
        let fed = bytes.withUnsafeBufferPointer { buffer in
            buffer.baseAddress.map {
                redisReaderFeed(reader, UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self), buffer.count)
            }
                ?? REDIS_OK
        }
        guard fed == REDIS_OK else { return ([], true) }
        var replies: [RedisReply] = []
        while replies.count < 10_000 {
            var raw: UnsafeMutableRawPointer?
            guard redisReaderGetReply(reader, &raw) == REDIS_OK else { return (replies, true) }
            guard let raw else { break }
            replies.append(RedisReply(raw.assumingMemoryBound(to: redisReply.self)))
            freeReplyObject(raw)
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

    @Test func mutatedRESPNeverCrashes() {
        var random = SystemRandomNumberGenerator()
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
            // Split the input at a random point: the reader must handle partial replies.
            _ = parse(bytes)
        }
    }
}

@Suite(.serialized) struct RedisBridgeTests {
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
        let onB = hubB.subscribe(.user("alice"))
        // Wait for B's subscription to reach Redis.
        var delivered: [Int64] = []
        for attempt in 1...200 where delivered.isEmpty {
            bridgeA.publish([event(Int64(attempt))])
            try await Task.sleep(for: .milliseconds(20))
            onB.nudge()
            if case .events(let events) = await onB.next() { delivered = events.map(\.seq) }
        }
        #expect(!delivered.isEmpty)
        #expect(bridgeA.status.publisherConnected)
        #expect(bridgeB.status.subscriberConnected)
        // Events for users nobody here follows are not subscribed to.
        let before = bridgeB.status.received
        bridgeA.publish([event(1_000, user: "nobody")])
        try await Task.sleep(for: .milliseconds(200))
        #expect(bridgeB.status.received == before)
        // Redis goes away and comes back: the bridges reconnect on their own.
        redis.kill()
        try await Task.sleep(for: .milliseconds(300))
        #expect(!bridgeB.status.subscriberConnected)
        try redis.start()
        for _ in 0..<100 where !bridgeB.status.subscriberConnected { try await Task.sleep(for: .milliseconds(100)) }
        #expect(bridgeB.status.subscriberConnected)
        #expect(bridgeB.status.reconnects >= 2)
    }
}
