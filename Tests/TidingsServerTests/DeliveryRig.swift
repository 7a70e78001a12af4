import TidingsFanout
import TidingsStore

@testable import TidingsServer

/// A world for one `StreamDelivery` without a socket: a user's stream in memory, the store calls
/// the machine asks for (answered when the test says), and everything it writes, decoded and
/// checked as it is written: positions one step at a time from the cursor, unread counts as
/// of each position, acks after their events, nothing after the close frame.
struct DeliveryRig {
    enum Frame: Equatable {
        case welcome(head: Int64, unread: Int64?)
        case reset(head: Int64)
        case event(position: Int64, unread: Int64?)
        case caughtUp(position: Int64, unread: Int64?)
        case ack(ref: String, status: String, unread: Int64?)
        case error(code: String)
        case ping
        case pong
        case close(code: UInt16)
    }

    static let user = "alice"
    static let epoch: UInt64 = 7

    var machine: StreamDelivery
    var now: ContinuousClock.Instant
    var wallSeconds: Int64 = 1_800_000_000
    /// The user's stream: event k is at index k - 1; `unread[k]` is the count just after it.
    private(set) var log: [StoredEvent] = []
    private(set) var unread: [Int64] = [0]
    /// Everything written, in order, and the flushes.
    private(set) var frames: [Frame] = []
    private(set) var flushes = 0
    /// Flushes not yet reported written.
    private(set) var flushesOnSocket = 0
    /// Store calls asked for and not yet answered.
    var requests: [StreamDelivery.Action] = []
    private(set) var readingPaused = false
    /// The channel was closed: true when after what was written.
    private(set) var channelClosed: Bool?
    private(set) var counted: [String: Int] = [:]
    /// Broken rules, each with the frame that broke it.
    private(set) var violations: [String] = []

    /// Read events marks appended, not yet taken by the test to publish.
    private var markEvents: [StoredEvent] = []
    /// The last position sent (nil before the welcome's replay or reset says where it starts).
    private(set) var lastPosition: Int64?
    private var closeWritten = false
    /// Acks promised and the position each must follow.
    private var ackAfter: [String: Int64] = [:]
    private var nextSeq: Int64 = 0

    init(configuration: StreamDelivery.Configuration = Self.configuration()) {
        now = .now
        machine = StreamDelivery(configuration: configuration, now: now)
    }

    static func configuration(pageSize: Int = 3, liveCapacity: Int = 4) -> StreamDelivery.Configuration {
        StreamDelivery.Configuration(
            pageSize: pageSize, liveCapacity: liveCapacity, epoch: epoch, epochText: "0000000000000007")
    }

    static var accepted: StreamDelivery.AcceptedHello {
        StreamDelivery.AcceptedHello(
            principal: Principal(subject: user, role: .user, expiresAt: 1_800_003_600), key: .user(user), cursor: nil)
    }

    // MARK: The log

    /// Appends an event: a `created` raises the unread count, a `read` lowers it.
    @discardableResult
    mutating func append(read: Bool = false) -> StoredEvent {
        nextSeq += 1 + Int64(log.count % 3)  // other users' events between
        let position = Int64(log.count + 1)
        let count = max(0, unread.last! + (read ? -1 : 1))
        let event = StoredEvent(
            seq: nextSeq, streamSeq: position, userID: Self.user, id: "evt-\(position)",
            type: read ? .read : .created, timestampMilliseconds: 1_700_000_000_000 + position,
            data: Array(#"{"notification_id":"n-\#(position)"}"#.utf8), counts: Self.counts(count),
            anchor: CursorAnchor(seq: nextSeq, check: UInt32(truncatingIfNeeded: nextSeq &* 2_654_435_761)))
        log.append(event)
        unread.append(count)
        return event
    }

    var head: Int64 { Int64(log.count) }

    /// The rig's notifications are all unseen while unread.
    static func counts(_ unread: Int64) -> InboxCounts { InboxCounts(unread: unread, unseen: unread) }

    func anchor(at position: Int64) -> CursorAnchor {
        position == 0 ? .start : log[Int(position) - 1].anchor
    }

    // MARK: Inputs

    mutating func feed(_ input: StreamDelivery.Input) {
        record(machine.handle(input, now: now))
    }

    mutating func advance(_ duration: Duration) {
        now += duration
        wallSeconds += Int64(duration.components.seconds)
    }

    mutating func tick(after duration: Duration = .seconds(1)) {
        advance(duration)
        feed(.tick(wallSeconds: wallSeconds))
    }

    /// The hello, accepted, and the start answered with the stream replaying after `position`
    /// (nil: a reset to the head).
    mutating func open(after position: Int64?) {
        feed(.text(#"{"type":"hello"}"#))
        guard case .checkHello = requests.first else {
            violations.append("no hello check")
            return
        }
        requests.removeFirst()
        feed(.helloChecked(.success(Self.accepted)))
        guard case .start = requests.first else {
            violations.append("no start")
            return
        }
        requests.removeFirst()
        if let position { lastPosition = position }
        feed(
            .started(
                StreamStart(
                    head: head, anchor: anchor(at: head), headCounts: Self.counts(unread[Int(head)]),
                    position: position,
                    resetReason: position == nil ? .cursorAhead : nil)))
    }

    /// Answers the oldest store call of `kind` (any when nil); false when there is none.
    @discardableResult
    mutating func answer(at index: Int = 0) -> Bool {
        guard index < requests.count else { return false }
        let request = requests.remove(at: index)
        switch request {
        case .readPage(let after, let limit):
            guard let cursor = try? Cursor.parse(after) else {
                violations.append("unreadable cursor \(after)")
                return true
            }
            let start = Int(cursor.position)
            let end = min(log.count, start + limit)
            let events = start < end ? Array(log[start..<end]) : []
            feed(.pageRead(EventPage(events: events, nextCursor: "", hasMore: end < log.count)))
        case .readCounts(let position):
            feed(.countsRead(Self.counts(unread[Int(position)])))
        case .mark(let ref, _):
            let changed = unread.last! > 0
            if changed { markEvents.append(append(read: true)) }
            ackAfter[ref] = head
            feed(
                .markAnswered(
                    ack: ServerMessage.ack(
                        ref: ref, status: changed ? "ok" : "noop", counts: Self.counts(unread.last!)),
                    after: head))
        case .refuseMark(let ref):
            ackAfter[ref] = 0
            feed(.markAnswered(ack: ServerMessage.ack(ref: ref, status: "forbidden", counts: nil), after: 0))
        default:
            violations.append("unexpected request \(request)")
        }
        return true
    }

    /// The read events that marks appended since the last call.
    mutating func takeMarkEvents() -> [StoredEvent] {
        defer { markEvents = [] }
        return markEvents
    }

    /// The socket takes everything written so far.
    mutating func socketTakesAll() {
        while flushesOnSocket > 0 {
            flushesOnSocket -= 1
            feed(.writeFinished)
        }
    }

    var events: [Int64] {
        frames.compactMap { if case .event(let position, _) = $0 { position } else { nil } }
    }

    // MARK: Recording

    private mutating func record(_ actions: [StreamDelivery.Action]) {
        for (index, action) in actions.enumerated() {
            // The handler learns that the socket took a flush from the write just before it.
            if action == .flush, index == 0 || !actions[index - 1].isWrite {
                violations.append("a flush not right after a write: \(actions)")
            }
            switch action {
            case .write(let frame):
                if closeWritten { violations.append("\(frame) written after the close frame") }
                record(frame)
            case .flush:
                flushes += 1
                flushesOnSocket += 1
            case .checkHello, .start, .readPage, .readCounts, .mark, .refuseMark:
                requests.append(action)
            case .pauseReading:
                readingPaused = true
            case .resumeReading:
                readingPaused = false
            case .closeChannel(let afterFlush):
                channelClosed = afterFlush
            case .countDelivered(let count):
                counted["delivered", default: 0] += count
            case .countCatchUp:
                counted["catchUp", default: 0] += 1
            case .countClosed(let code):
                counted["closed \(code)", default: 0] += 1
            case .logStuckWriter:
                counted["stuck", default: 0] += 1
            }
        }
    }

    private mutating func record(_ frame: StreamDelivery.OutboundFrame) {
        switch frame {
        case .ping: frames.append(.ping)
        case .pong: frames.append(.pong)
        case .close(let code, _):
            closeWritten = true
            frames.append(.close(code: code))
        case .text(let bytes):
            guard let message = try? JSONValue.parse(bytes).objectValue, let type = message["type"]?.stringValue else {
                violations.append("unreadable message")
                return
            }
            let count = message["unread_count"]?.integerValue
            switch type {
            case "welcome":
                if !frames.isEmpty { violations.append("welcome after \(frames.count) frames") }
                frames.append(.welcome(head: position(message["head"]), unread: count))
            case "reset":
                let head = position(message["head"])
                lastPosition = head
                frames.append(.reset(head: head))
            case "event":
                let cursor = message["event"]?.objectValue?["cursor"]
                let at = position(cursor)
                if let last = lastPosition, at != last + 1 {
                    violations.append(at <= last ? "event \(at) again after \(last)" : "gap: event \(at) after \(last)")
                }
                if count != unread[Int(at)] {
                    violations.append("event \(at) with unread \(String(describing: count))")
                }
                lastPosition = at
                frames.append(.event(position: at, unread: count))
            case "caught_up":
                let at = position(message["cursor"])
                if at != lastPosition { violations.append("caught_up at \(at) after event \(lastPosition ?? -1)") }
                if count != unread[Int(at)] { violations.append("caught_up with unread \(String(describing: count))") }
                frames.append(.caughtUp(position: at, unread: count))
            case "ack":
                let ref = message["ref"]?.stringValue ?? ""
                if let after = ackAfter[ref], after > (lastPosition ?? 0) {
                    violations.append("ack \(ref) before event \(after) (sent through \(lastPosition ?? 0))")
                }
                frames.append(.ack(ref: ref, status: message["status"]?.stringValue ?? "", unread: count))
            case "error":
                frames.append(.error(code: message["code"]?.stringValue ?? ""))
            default:
                violations.append("unknown message \(type)")
            }
        }
    }

    /// The position a cursor names, or -1.
    private func position(_ value: JSONValue?) -> Int64 {
        guard let text = value?.stringValue, let cursor = try? Cursor.parse(text) else { return -1 }
        return cursor.position
    }
}

extension StreamDelivery.Action {
    var isWrite: Bool {
        if case .write = self { true } else { false }
    }
}
