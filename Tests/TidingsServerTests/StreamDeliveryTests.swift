import Testing
import TidingsFanout
import TidingsStore
import TidingsTestSupport

@testable import TidingsServer

/// The stream's rules on `StreamDelivery` alone: no socket, no store, no clock but the test's.
/// Each test names one rule; `DeliveryRig` checks the frames' order on every write.
struct StreamDeliveryTests {
    // MARK: The hello

    @Test func noHelloWithinTheTimeoutCloses4408() {
        var rig = DeliveryRig()
        rig.tick(after: .seconds(9))
        #expect(rig.frames.isEmpty)
        rig.tick(after: .seconds(1))
        #expect(rig.frames == [.error(code: "timeout"), .close(code: 4408)])
        rig.tick(after: .seconds(5))
        #expect(rig.channelClosed == false)
    }

    @Test func aRefusedHelloSendsItsErrorThenItsClose() {
        var rig = DeliveryRig()
        rig.feed(.text("{}"))
        rig.feed(.helloChecked(.failure(.forbidden("no"))))
        #expect(rig.frames == [.error(code: "forbidden"), .close(code: 4403)])
        #expect(rig.requests == [.checkHello("{}")])
    }

    @Test func binaryMessagesClose4400() {
        var rig = DeliveryRig()
        rig.feed(.binary)
        #expect(rig.frames == [.error(code: "bad_request"), .close(code: 4400)])
    }

    // MARK: Welcome, replay, caught_up, reset

    @Test func replayReadsPageByPageThenCaughtUpWithTheLastEventsCount() {
        var rig = DeliveryRig()
        for _ in 0..<7 { rig.append() }
        rig.open(after: 2)
        #expect(rig.frames == [.welcome(head: 7, unread: 7)])
        while rig.answer() {}
        #expect(rig.events == [3, 4, 5, 6, 7])
        #expect(rig.frames.last == .caughtUp(position: 7, unread: 7))
        #expect(rig.violations.isEmpty, "\(rig.violations)")
    }

    @Test func caughtUpAtTheHeadReadsTheUnreadCountAsOfTheCursor() {
        var rig = DeliveryRig()
        for _ in 0..<3 { rig.append() }
        rig.open(after: 3)
        #expect(rig.requests.count == 1)
        rig.answer()
        #expect(rig.requests == [.readCounts(atStreamSeq: 3)])
        rig.answer()
        #expect(rig.frames.last == .caughtUp(position: 3, unread: 3))
        #expect(rig.violations.isEmpty, "\(rig.violations)")
    }

    @Test func aResetStreamGoesLiveFromTheHead() {
        var rig = DeliveryRig()
        for _ in 0..<3 { rig.append() }
        rig.open(after: nil)
        #expect(rig.frames == [.welcome(head: 3, unread: 3), .reset(head: 3)])
        rig.feed(.live([rig.append()]))
        #expect(rig.events == [4])
        #expect(rig.violations.isEmpty, "\(rig.violations)")
    }

    @Test func aPageWaitsForTheSocketBeforeTheNextIsRead() {
        var rig = DeliveryRig()
        for _ in 0..<9 { rig.append() }
        rig.open(after: 0)
        rig.answer()
        rig.feed(.writabilityChanged(false))
        #expect(rig.requests.count == 1)
        rig.answer()
        #expect(rig.requests.isEmpty, "no read while the socket is full")
        rig.feed(.writabilityChanged(true))
        #expect(rig.requests.count == 1)
        while rig.answer() {}
        #expect(rig.events == Array(1...9))
    }

    // MARK: Live events

    @Test func liveEventsAtOrBeforeTheLastPositionAreSkipped() {
        var rig = DeliveryRig()
        let first = rig.append()
        let second = rig.append()
        rig.open(after: 0)
        rig.feed(.live([first]))
        while rig.answer() {}
        rig.feed(.live([first, second]))
        #expect(rig.events == [1, 2])
        #expect(rig.violations.isEmpty, "\(rig.violations)")
    }

    @Test func aLiveEventAheadFillsTheGapFromTheLogFirst() {
        var rig = DeliveryRig()
        rig.open(after: nil)
        rig.append()
        rig.append()
        let third = rig.append()
        rig.feed(.live([third]))
        #expect(rig.events.isEmpty)
        #expect(rig.requests.count == 1)
        rig.answer()
        #expect(rig.events == [1, 2, 3])
        #expect(rig.violations.isEmpty, "\(rig.violations)")
    }

    @Test func aLiveEventWithoutItsUnreadCountIsReadFromTheLog() {
        var rig = DeliveryRig()
        rig.open(after: nil)
        var event = rig.append()
        event.counts = nil
        rig.feed(.live([event]))
        #expect(rig.events.isEmpty)
        rig.answer()
        #expect(rig.frames.last == .event(position: 1, unread: 1))
    }

    @Test func liveEventsOverflowWhileTheSocketIsFullAndAreReadFromTheLog() {
        var rig = DeliveryRig()
        rig.open(after: nil)
        rig.feed(.writabilityChanged(false))
        for _ in 0..<4 { rig.feed(.live([rig.append()])) }
        #expect(rig.counted["catchUp"] == nil)
        rig.feed(.live([rig.append()]))
        #expect(rig.counted["catchUp"] == 1)
        #expect(rig.requests.isEmpty)
        for _ in 0..<3 { rig.feed(.live([rig.append()])) }
        rig.feed(.writabilityChanged(true))
        while rig.answer() {}
        #expect(rig.events == Array(1...8))
        #expect(rig.violations.isEmpty, "\(rig.violations)")
    }

    @Test func aBatchLargerThanTheQueueIsSentWhenTheSocketTakesIt() {
        var rig = DeliveryRig()
        rig.open(after: nil)
        rig.feed(.live((0..<10).map { _ in rig.append() }))
        #expect(rig.events == Array(1...10))
        #expect(rig.counted["catchUp"] == nil)
    }

    // MARK: Client messages and acks

    @Test func messagesBeforeTheWelcomeWaitForCaughtUpAndPauseReading() {
        var rig = DeliveryRig()
        for _ in 0..<4 { rig.append() }
        rig.feed(.text(#"{"type":"hello"}"#))
        rig.feed(.text(#"{"type":"read","ref":"r1","all":true}"#))
        #expect(rig.readingPaused)
        rig.requests.removeFirst()
        rig.feed(.helloChecked(.success(DeliveryRig.accepted)))
        rig.requests.removeFirst()
        rig.feed(
            .started(
                StreamStart(
                    head: 4, anchor: rig.anchor(at: 4), headCounts: InboxCounts(unread: 4, unseen: 4), position: 0)))
        #expect(!rig.requests.contains { if case .mark = $0 { true } else { false } })
        while rig.answer() {}
        #expect(!rig.readingPaused)
        rig.feed(.live(rig.takeMarkEvents()))
        #expect(rig.events == [1, 2, 3, 4, 5])
        #expect(rig.frames.last == .ack(ref: "r1", status: "ok", unread: 3))
        #expect(rig.violations.isEmpty, "\(rig.violations)")
    }

    @Test func anAckWaitsForTheEventsItAnswers() {
        var rig = DeliveryRig()
        rig.append()
        rig.open(after: nil)
        rig.feed(.text(#"{"type":"read","ref":"r1","notification_ids":["n-1"]}"#))
        rig.answer()
        #expect(!rig.frames.contains { if case .ack = $0 { true } else { false } })
        rig.feed(.live([rig.log[1]]))
        #expect(rig.frames.suffix(2) == [.event(position: 2, unread: 0), .ack(ref: "r1", status: "ok", unread: 0)])
        #expect(rig.violations.isEmpty, "\(rig.violations)")
    }

    @Test func aMalformedMessageCloses4400() {
        var rig = DeliveryRig()
        rig.open(after: nil)
        rig.feed(.text(#"{"type":"shout"}"#))
        #expect(rig.frames.suffix(2) == [.error(code: "bad_request"), .close(code: 4400)])
    }

    @Test func anotherUsersStreamGetsForbiddenAcks() {
        var rig = DeliveryRig()
        rig.feed(.text(#"{"type":"hello"}"#))
        rig.requests.removeFirst()
        let auditor = Principal(subject: "audit", role: .auditor, expiresAt: 1_800_003_600)
        rig.feed(.helloChecked(.success(.init(principal: auditor, key: .user(DeliveryRig.user), cursor: nil))))
        rig.requests.removeFirst()
        rig.feed(.started(StreamStart(head: 0, anchor: .start, headCounts: .zero, resetReason: .cursorAhead)))
        rig.feed(.text(#"{"type":"read","ref":"r1","all":true}"#))
        #expect(rig.requests == [.refuseMark(ref: "r1")])
    }

    // MARK: Deadlines

    @Test func aSocketThatTakesNothingForTheWriteTimeoutCloses4429() {
        var rig = DeliveryRig()
        rig.open(after: nil)
        rig.feed(.live([rig.append()]))
        rig.tick(after: .seconds(29))
        #expect(rig.frames.last == .event(position: 1, unread: 1))
        rig.tick(after: .seconds(1))
        #expect(rig.frames.last == .close(code: 4429))
        #expect(rig.counted["stuck"] == 1)
    }

    @Test func aSocketThatTakesWritesIsNotClosed() {
        var rig = DeliveryRig()
        rig.open(after: nil)
        for _ in 0..<40 {
            rig.feed(.live([rig.append()]))
            rig.tick(after: .seconds(1))
            rig.socketTakesAll()
        }
        #expect(!rig.frames.contains(.close(code: 4429)))
    }

    @Test func anExpiredTokenCloses4401AfterTheLeeway() {
        var rig = DeliveryRig()
        rig.open(after: nil)
        rig.wallSeconds = 1_800_003_600 + TokenVerifier.leewaySeconds - 1
        rig.tick(after: .zero)
        #expect(!rig.frames.contains(.close(code: 4401)))
        rig.tick(after: .seconds(1))
        #expect(rig.frames.suffix(2) == [.error(code: "unauthorized"), .close(code: 4401)])
    }

    @Test func aSilentClientIsPingedThenClosed() {
        var rig = DeliveryRig()
        rig.open(after: nil)
        rig.socketTakesAll()
        rig.tick(after: .seconds(30))
        #expect(rig.frames.last == .ping)
        rig.socketTakesAll()
        rig.tick(after: .seconds(29))
        #expect(rig.frames.last == .ping)
        rig.feed(.pong)
        rig.tick(after: .seconds(31))
        rig.socketTakesAll()
        #expect(rig.frames.last == .ping)
        rig.tick(after: .seconds(30))
        #expect(rig.frames.last == .close(code: 1001))
    }

    @Test func pingsAreAnswered() {
        var rig = DeliveryRig()
        rig.feed(.ping([1, 2]))
        #expect(rig.frames == [.pong])
    }

    // MARK: Closing

    @Test func theCloseFrameIsLastAndWaitsForTheClientsAnswer() {
        var rig = DeliveryRig()
        for _ in 0..<5 { rig.append() }
        rig.open(after: 0)
        rig.feed(.closeRequested(code: 1001))
        #expect(rig.frames.last == .close(code: 1001))
        while rig.answer() {}
        rig.feed(.live([rig.append()]))
        rig.feed(.ping([]))
        #expect(rig.frames.last == .close(code: 1001))
        #expect(rig.channelClosed == nil)
        rig.feed(.closeReceived(code: 1001))
        #expect(rig.channelClosed == false)
        #expect(rig.violations.isEmpty, "\(rig.violations)")
    }

    @Test func aClientThatDoesNotAnswerTheCloseIsDroppedAfterTheCloseTimeout() {
        var rig = DeliveryRig()
        rig.open(after: nil)
        rig.feed(.closeRequested(code: 1012))
        rig.tick(after: .seconds(4))
        #expect(rig.channelClosed == nil)
        rig.tick(after: .seconds(1))
        #expect(rig.channelClosed == false)
    }

    @Test func aClientsCloseIsEchoedAndTheChannelClosedAfterIt() {
        var rig = DeliveryRig()
        rig.open(after: nil)
        rig.feed(.closeReceived(code: 4000))
        #expect(rig.frames.last == .close(code: 4000))
        #expect(rig.channelClosed == true)
        var other = DeliveryRig()
        other.feed(.closeReceived(code: 1005))
        #expect(other.frames == [.close(code: 1000)])
    }

    @Test func closeReasonsFitTheirFrame() {
        let long = String(repeating: "é", count: 100)
        let reason = StreamDelivery.closeReason(long)
        #expect(reason.utf8.count <= 123)
        #expect(reason == String(repeating: "é", count: 61))
    }

    // MARK: Model-based

    /// Random interleavings of appends, live events (delivered, lost, repeated, without their
    /// count, in batches), reads answered in any order, marks, a socket that fills and drains,
    /// and the clock; the rig checks every frame as it is written. Then the world settles: the
    /// last event arrives live, as the log watcher would bring it, and every event of the log
    /// must have been sent exactly once, in order.
    @Test(arguments: 1...300 as ClosedRange<UInt64>) func randomInterleavingsKeepTheStreamExact(seed: UInt64) {
        var random = SeededGenerator(seed: seed)
        var rig = DeliveryRig(
            configuration: DeliveryRig.configuration(
                pageSize: Int.random(in: 1...5, using: &random), liveCapacity: Int.random(in: 1...6, using: &random)))
        for _ in 0..<Int.random(in: 0...12, using: &random) { rig.append() }
        let start: Int64? = Bool.random(using: &random) ? nil : Int64.random(in: 0...rig.head, using: &random)
        rig.open(after: start)
        var writable = true
        var closedBy: String?
        var marks = 0
        for _ in 0..<400 {
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<30:
                var batch: [StoredEvent] = []
                for _ in 0..<Int.random(in: 1...3, using: &random) { batch.append(rig.append()) }
                switch Int.random(in: 0..<10, using: &random) {
                case 0: break  // lost
                case 1: rig.feed(.live(batch + batch))  // repeated
                case 2:
                    rig.feed(
                        .live(
                            batch.map {
                                var event = $0; event.counts = nil; return event
                            }))
                case 3: rig.feed(.live(Array(rig.log.suffix(Int.random(in: 1...6, using: &random)))))
                default: rig.feed(.live(batch))
                }
            case 30..<55:
                if !rig.requests.isEmpty {
                    rig.answer(at: Int.random(in: 0..<rig.requests.count, using: &random))
                }
                // A mark's read event reaches the hub too, unless its message is lost.
                let published = rig.takeMarkEvents()
                if !published.isEmpty && Int.random(in: 0..<4, using: &random) > 0 { rig.feed(.live(published)) }
            case 55..<65:
                writable.toggle()
                rig.feed(.writabilityChanged(writable))
            case 65..<80:
                if writable { rig.socketTakesAll() }
            case 80..<88:
                marks += 1
                rig.feed(.text(#"{"type":"read","ref":"m\#(marks)","all":true}"#))
            case 88..<97:
                rig.tick(after: .milliseconds(Int64.random(in: 0...2_000, using: &random)))
            case 97:
                if Int.random(in: 0..<8, using: &random) == 0 {
                    rig.feed(.closeRequested(code: 1001))
                    closedBy = closedBy ?? "server"
                }
            default:
                rig.feed(.ping([]))
            }
            if writable { rig.socketTakesAll() }
        }
        #expect(rig.violations.isEmpty, "seed \(seed): \(rig.violations)")
        guard closedBy == nil, !rig.frames.contains(where: { if case .close = $0 { true } else { false } }) else {
            return
        }
        // The world settles: the socket drains, every call is answered, and the log watcher
        // brings the last event whenever the stream is behind.
        rig.feed(.writabilityChanged(true))
        rig.socketTakesAll()
        var rounds = 0
        while rounds < 10_000 {
            rounds += 1
            if rig.answer() {
                rig.socketTakesAll()
            } else if (rig.lastPosition ?? 0) < rig.head, let last = rig.log.last {
                rig.feed(.live([last]))
            } else {
                break
            }
        }
        #expect(rig.violations.isEmpty, "seed \(seed): \(rig.violations)")
        #expect(rig.lastPosition == rig.head, "seed \(seed): sent through \(rig.lastPosition ?? -1) of \(rig.head)")
        let acks = rig.frames.filter { if case .ack = $0 { true } else { false } }.count
        #expect(acks == marks, "seed \(seed): \(acks) acks for \(marks) reads")
        #expect(rig.machine.isQuiet, "seed \(seed)")
    }
}
