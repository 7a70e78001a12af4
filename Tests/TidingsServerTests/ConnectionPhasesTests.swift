import NIOCore
import Testing

@testable import TidingsServer

/// The rules of `ConnectionPhases`, without sockets: which deadline runs in each phase of an
/// HTTP connection, from when, and what does and does not move it.
@Suite struct ConnectionPhasesTests {
    static let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
    static func at(_ milliseconds: Int64) -> NIODeadline { start + .milliseconds(milliseconds) }

    static var deadlines: HTTPDeadlines {
        var deadlines = HTTPDeadlines()
        deadlines.head = .seconds(10)
        deadlines.body = .seconds(60)
        deadlines.idle = .seconds(75)
        deadlines.write = .seconds(30)
        return deadlines
    }

    @Test func aNewConnectionHasItsHeadDeadlineFromTheAcceptAndTricklingDoesNotMoveIt() {
        var phases = ConnectionPhases(deadlines: Self.deadlines, acceptedAt: Self.at(0))
        #expect(phases.next?.phase == .head)
        #expect(phases.next?.at == Self.at(10_000))
        for byte in 1...9 { phases.received(at: Self.at(Int64(byte) * 1_000)) }
        #expect(phases.next?.at == Self.at(10_000))
        #expect(phases.expired(at: Self.at(9_999)) == nil)
        #expect(phases.expired(at: Self.at(10_000)) == .head)
    }

    @Test func theBodyDeadlineRunsFromTheEndOfTheHead() {
        var phases = ConnectionPhases(deadlines: Self.deadlines, acceptedAt: Self.at(0))
        phases.headEnded(at: Self.at(2_000))
        phases.received(at: Self.at(30_000))
        #expect(phases.next?.phase == .body)
        #expect(phases.next?.at == Self.at(62_000))
        #expect(phases.expired(at: Self.at(61_999)) == nil)
        #expect(phases.expired(at: Self.at(62_000)) == .body)
    }

    @Test func nothingRunsWhileTheServerOwesAResponseAndIdleTimeStartsWhenItEnds() {
        var phases = ConnectionPhases(deadlines: Self.deadlines, acceptedAt: Self.at(0))
        phases.headEnded(at: Self.at(1))
        phases.requestEnded(at: Self.at(2))
        #expect(phases.next == nil)
        #expect(phases.expired(at: Self.at(10_000_000)) == nil)
        phases.responseEnded(at: Self.at(500_000))
        #expect(phases.next?.phase == .idle)
        #expect(phases.next?.at == Self.at(575_000))
        #expect(phases.expired(at: Self.at(575_000)) == .idle)
    }

    @Test func theNextRequestsFirstByteStartsItsHeadDeadline() {
        var phases = ConnectionPhases(deadlines: Self.deadlines, acceptedAt: Self.at(0))
        phases.headEnded(at: Self.at(1))
        phases.requestEnded(at: Self.at(2))
        phases.responseEnded(at: Self.at(3))
        phases.received(at: Self.at(50_000))
        #expect(phases.next?.phase == .head)
        #expect(phases.next?.at == Self.at(60_000))
        phases.received(at: Self.at(55_000))
        #expect(phases.next?.at == Self.at(60_000))
    }

    @Test func aPipelinedRequestIsTimedWhileTheFirstIsAnswered() {
        var phases = ConnectionPhases(deadlines: Self.deadlines, acceptedAt: Self.at(0))
        phases.headEnded(at: Self.at(1))
        phases.requestEnded(at: Self.at(2))
        phases.received(at: Self.at(3))
        #expect(phases.next?.phase == .head)
        phases.headEnded(at: Self.at(4))
        phases.requestEnded(at: Self.at(5))
        phases.responseEnded(at: Self.at(6))
        #expect(phases.next == nil, "the second response is still owed")
        phases.responseEnded(at: Self.at(7))
        #expect(phases.next?.phase == .idle)
        #expect(phases.next?.at == Self.at(75_007))
    }

    @Test func onlyAStalledSocketHasAWriteDeadlineAndWhatTCPSendsPushesItBack() {
        var phases = ConnectionPhases(deadlines: Self.deadlines, acceptedAt: Self.at(0))
        phases.headEnded(at: Self.at(1))
        phases.requestEnded(at: Self.at(2))
        #expect(phases.next == nil)
        phases.writable(false, at: Self.at(100))
        #expect(phases.next?.phase == .write)
        #expect(phases.next?.at == Self.at(30_100))
        // Unwritable again while already stalled: the clock runs on.
        phases.writable(false, at: Self.at(5_000))
        #expect(phases.next?.at == Self.at(30_100))
        // A slow reader: TCP keeps sending, each time within the deadline of the last.
        for sent in stride(from: Int64(20_000), through: 200_000, by: 20_000) {
            #expect(phases.expired(at: Self.at(sent)) == nil)
            phases.socketSent(at: Self.at(sent))
        }
        #expect(phases.expired(at: Self.at(229_999)) == nil)
        #expect(phases.expired(at: Self.at(230_000)) == .write)
        // A send older than the last one seen changes nothing.
        phases.socketSent(at: Self.at(150_000))
        #expect(phases.next?.at == Self.at(230_000))
        phases.writable(true, at: Self.at(210_000))
        #expect(phases.next == nil, "writable again, the response not ended")
    }

    @Test func theNearestOfTheReadAndWriteDeadlinesRuns() {
        var phases = ConnectionPhases(deadlines: Self.deadlines, acceptedAt: Self.at(0))
        phases.writable(false, at: Self.at(0))
        #expect(phases.next?.phase == .head)
        phases.headEnded(at: Self.at(1_000))
        #expect(phases.next?.phase == .write)
        #expect(phases.next?.at == Self.at(30_000))
        phases.socketSent(at: Self.at(40_000))
        #expect(phases.next?.phase == .body)
    }

    @Test func noPhaseThatBeginsLaterEndsBeforeTheShortestDeadline() {
        #expect(Self.deadlines.shortest == .seconds(10))
        var deadlines = Self.deadlines
        deadlines.write = .seconds(3)
        #expect(deadlines.shortest == .seconds(3))
    }
}
