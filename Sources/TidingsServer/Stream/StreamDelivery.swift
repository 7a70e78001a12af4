import TidingsFanout
import TidingsStore

/// Everything one `/v1/stream` connection decides, as a value: the hello, the welcome, the
/// replay, `caught_up` or `reset`, live events with their skip, gap and overflow rules, read
/// acks held until their events are sent, the deadlines and the close handshake.
///
/// It does no I/O. Each input (`handle(_:now:)`) says what happened: a message arrived, a read
/// finished, live events came, the socket took a write or became writable, the clock ticked.
/// The answer is the actions to carry out in order: frames to write, a flush, a read of the
/// log, a mark, closing the channel. `StreamChannelHandler` carries them out on the channel's
/// event loop; the tests drive the machine without a socket (`StreamDeliveryTests`).
///
/// Why the stream is lossless: the connection subscribes to live events before it reads where
/// the stream starts; it replays the log after the cursor, then takes live events, skipping one
/// at or before the last position it sent and reading the log first when one is more than a
/// step ahead. Live events wait in `pending` while a read runs or the socket is full; more than
/// `liveCapacity` of them are dropped, and the stream reads the log from its last position
/// instead (an overflow), at the pace the socket takes it.
struct StreamDelivery {
    struct Configuration {
        var helloTimeout: Duration = .seconds(10)
        var writeTimeout: Duration = .seconds(30)
        /// How long a close frame waits for the client's answer before the channel is closed.
        var closeTimeout: Duration = .seconds(5)
        /// A ping when the client has sent nothing for this long; the channel is closed when
        /// the next interval passes without a frame from it.
        var pingInterval: Duration = .seconds(30)
        var pageSize = 200
        /// Live events held while a read runs or the socket is full, before an overflow.
        var liveCapacity = 256
        /// The store's epoch, which every cursor carries.
        var epoch: UInt64
        var epochText: String
    }

    /// What the machine is told.
    enum Input {
        /// A whole text message from the client.
        case text(String)
        /// A whole binary message (the protocol has none).
        case binary
        case ping([UInt8])
        case pong
        /// The client's close frame, with its code when it had one.
        case closeReceived(code: UInt16?)
        /// The frame decoder refused the input (1009: too large; 1002: not WebSocket).
        case protocolError(code: UInt16)
        /// The answer to `.checkHello`.
        case helloChecked(Result<AcceptedHello, StreamFault>)
        /// The answer to `.start`.
        case started(StreamStart)
        /// The answer to `.readPage`.
        case pageRead(EventPage)
        /// The answer to `.readCounts`.
        case countsRead(InboxCounts)
        /// The answer to `.mark` and `.refuseMark`: the ack, to send once everything up to
        /// `after` is sent.
        case markAnswered(ack: [UInt8], after: Int64)
        /// A store call failed: the client's fault (4400) or, nil, the server's (1011).
        case storeFailed(StreamFault?)
        /// Committed events of this stream, in commit order (gaps and repeats allowed).
        case live([StoredEvent])
        /// A flush was written to the socket.
        case writeFinished
        case writabilityChanged(Bool)
        /// The watchdog's look, with the wall clock's seconds (for the token's `exp`).
        case tick(wallSeconds: Int64)
        /// The server closes the stream (1001 shutdown, 1012 the log's history changed).
        case closeRequested(code: UInt16)
        /// The connection is gone.
        case channelClosed
    }

    /// What the handler does, in order.
    enum Action: Equatable {
        case write(OutboundFrame)
        /// Flush what was written; report `.writeFinished` when it is on the socket.
        case flush
        /// Check the hello (token, permission, shape, the subject's stream bound); answer
        /// `.helloChecked`.
        case checkHello(String)
        /// Subscribe to the stream's live events, then read where it starts; answer `.started`.
        case start(StreamKey, cursor: String?)
        /// Read up to `limit` events after `cursor`; answer `.pageRead`.
        case readPage(after: String, limit: Int)
        /// The user's counts as of a stream position; answer `.countsRead`.
        case readCounts(atStreamSeq: Int64)
        /// Change the state of the stream's user's notifications; answer `.markAnswered`.
        case mark(ref: String, StateChange)
        /// A change this stream may not make: answer `.markAnswered` with a `forbidden` ack.
        case refuseMark(ref: String)
        /// Stop reading client frames until `.resumeReading` (a message is being handled).
        case pauseReading
        case resumeReading
        /// Close the channel; with `afterFlush`, once what was written is on the socket.
        case closeChannel(afterFlush: Bool)
        case countDelivered(Int)
        case countCatchUp
        case countClosed(code: UInt16)
        case logStuckWriter
    }

    enum OutboundFrame: Equatable {
        case text([UInt8])
        case ping
        case pong([UInt8])
        case close(code: UInt16, reason: String)
    }

    /// A hello that passed its checks.
    struct AcceptedHello: Equatable {
        let principal: Principal
        let key: StreamKey
        let cursor: String?
    }

    enum Phase: Equatable {
        /// Waiting for the first message, until `helloDeadline`.
        case awaitingHello
        /// `.checkHello` or `.start` asked; nothing sent yet.
        case starting
        /// Welcome sent: replay, then live.
        case streaming
        /// The close frame is written; waiting for the client's, until `closeDeadline`.
        case closing
        case closed
    }

    /// How far the stream has gone: the last position sent, with the newest history it was
    /// seen in (what its cursor carries).
    struct Reached: Equatable {
        var position: Int64
        var anchor: CursorAnchor
    }

    /// A read of the log the stream is in the middle of: pages after `reached` up to `upTo`.
    struct ReadPlan: Equatable {
        enum Purpose: Equatable {
            /// After the welcome: `caught_up` follows.
            case replay
            /// A live event came more than a step ahead (or without its counts).
            case gap(eventPosition: Int64)
            /// Live events overflowed: read to the head.
            case catchUp
        }
        var purpose: Purpose
        var upTo: Int64
        /// A page is being read.
        var reading = false
        /// The pages are read; `caught_up` waits for the counts.
        var awaitingCounts = false
        /// The counts as of the last event the plan sent.
        var counts: InboxCounts?
    }

    let configuration: Configuration
    private(set) var phase = Phase.awaitingHello
    private let helloDeadline: ContinuousClock.Instant
    private var closeDeadline: ContinuousClock.Instant?

    private(set) var accepted: AcceptedHello?
    private var cursorStream = Cursor.Stream.all
    private var userID: String?
    private(set) var reached = Reached(position: 0, anchor: .start)
    private(set) var plan: ReadPlan?
    /// Live events waiting for a read to finish or the socket to take them.
    private(set) var pending: [StoredEvent] = []
    private(set) var overflowed = false
    /// A gap read that did not reach its event: the event at this position is sent as it is.
    private var gapFallback: Int64?
    private var writable = true

    /// Client messages after the hello, handled one at a time once streaming.
    private var inbox: [String] = []
    private var marking = false
    private var readingPaused = false
    /// Acks waiting for the events they answer: (position, message).
    private var acks: [(after: Int64, message: [UInt8])] = []

    /// Flushes on the socket not yet written, and when one last finished (or the first began).
    private var flushesInFlight = 0
    private var writeProgress: ContinuousClock.Instant
    private var lastHeard: ContinuousClock.Instant
    private var pingOutstanding = false

    init(configuration: Configuration, now: ContinuousClock.Instant) {
        self.configuration = configuration
        helloDeadline = now + configuration.helloTimeout
        writeProgress = now
        lastHeard = now
    }

    /// Whether the stream has anything in progress that needs no input from the client: a
    /// read, a mark, unsent acks (for tests and the model).
    var isQuiet: Bool {
        plan == nil && pending.isEmpty && !marking && inbox.isEmpty && acks.isEmpty && !overflowed
    }

    // MARK: Inputs

    mutating func handle(_ input: Input, now: ContinuousClock.Instant) -> [Action] {
        var out = Output()
        switch phase {
        case .closed:
            return []
        case .closing:
            handleWhileClosing(input, now: now, &out)
        default:
            handleWhileOpen(input, now: now, &out)
        }
        // One flush for everything this input wrote; the write deadline counts from the first
        // flush the socket has not taken yet.
        if out.wrote {
            if flushesInFlight == 0 { writeProgress = now }
            flushesInFlight += 1
        }
        return out.finish()
    }

    private mutating func handleWhileOpen(_ input: Input, now: ContinuousClock.Instant, _ out: inout Output) {
        switch input {
        case .text(let text):
            lastHeard = now
            received(text, now: now, &out)
        case .binary:
            lastHeard = now
            close(fault: .badRequest("messages must be JSON text"), now: now, &out)
        case .ping(let data):
            lastHeard = now
            out.write(.pong(data))
        case .pong:
            lastHeard = now
            pingOutstanding = false
        case .closeReceived(let code):
            // The client closes: answer with its code and go (RFC 6455, 5.5.1).
            out.write(.close(code: Self.echoable(code), reason: ""))
            out.closeChannel(afterFlush: true)
            phase = .closed
        case .protocolError(let code):
            out.write(.close(code: code, reason: ""))
            out.append(.countClosed(code: code))
            out.closeChannel(afterFlush: true)
            phase = .closed
        case .helloChecked(.failure(let fault)):
            close(fault: fault, now: now, &out)
        case .helloChecked(.success(let hello)):
            accepted(hello, &out)
        case .started(let start):
            started(start, now: now, &out)
        case .pageRead(let page):
            pageRead(page, now: now, &out)
        case .countsRead(let counts):
            countsRead(counts, now: now, &out)
        case .markAnswered(let ack, let after):
            marking = false
            acks.append((after, ack))
            pump(now: now, &out)
        case .storeFailed(let fault):
            if let fault {
                close(fault: fault, now: now, &out)
            } else {
                close(code: 1011, now: now, &out)
            }
        case .live(let events):
            live(events, now: now, &out)
        case .writeFinished:
            flushesInFlight = max(0, flushesInFlight - 1)
            writeProgress = now
        case .writabilityChanged(let isWritable):
            writable = isWritable
            if isWritable { pump(now: now, &out) }
        case .tick(let wallSeconds):
            tick(now: now, wallSeconds: wallSeconds, &out)
        case .closeRequested(let code):
            close(code: code, now: now, &out)
        case .channelClosed:
            phase = .closed
        }
    }

    private mutating func handleWhileClosing(_ input: Input, now: ContinuousClock.Instant, _ out: inout Output) {
        switch input {
        case .closeReceived, .protocolError:
            out.closeChannel(afterFlush: false)
            phase = .closed
        case .tick:
            if let closeDeadline, now >= closeDeadline {
                out.closeChannel(afterFlush: false)
                phase = .closed
            }
        case .channelClosed:
            phase = .closed
        case .writeFinished:
            flushesInFlight = max(0, flushesInFlight - 1)
        default:
            // Nothing is sent after the close frame: reads that finish now, live events,
            // answers to marks and the client's other frames are dropped.
            break
        }
    }

    // MARK: Hello and start

    private mutating func received(_ text: String, now: ContinuousClock.Instant, _ out: inout Output) {
        if phase == .awaitingHello {
            phase = .starting
            out.append(.checkHello(text))
            return
        }
        // Messages sent before the welcome are handled after it, in order, one at a time.
        inbox.append(text)
        pump(now: now, &out)
    }

    private mutating func accepted(_ hello: AcceptedHello, _ out: inout Output) {
        accepted = hello
        if case .user(let id) = hello.key {
            userID = id
            cursorStream = .user(hash: Cursor.userHash(id))
        }
        // Subscribe before reading the log: nothing committed in between can be missed.
        out.append(.start(hello.key, cursor: hello.cursor))
    }

    private mutating func started(_ start: StreamStart, now: ContinuousClock.Instant, _ out: inout Output) {
        guard let hello = accepted else { return }
        phase = .streaming
        let head = Reached(position: start.head, anchor: start.anchor)
        out.write(
            .text(
                ServerMessage.welcome(
                    stream: hello.key.description, epoch: configuration.epochText, head: cursorText(head),
                    counts: start.headCounts)))
        if let position = start.position {
            reached = Reached(position: position, anchor: start.anchor)
            plan = ReadPlan(purpose: .replay, upTo: .max)
        } else {
            reached = head
            out.write(
                .text(
                    ServerMessage.reset(
                        reason: start.resetReason ?? .cursorAhead, head: cursorText(head),
                        counts: start.headCounts)))
        }
        pump(now: now, &out)
    }

    // MARK: Reading the log

    private mutating func pageRead(_ page: EventPage, now: ContinuousClock.Instant, _ out: inout Output) {
        guard var current = plan, current.reading else { return }
        current.reading = false
        var sent = 0
        for event in page.events where position(of: event) > reached.position {
            send(event, &out)
            current.counts = event.counts
            sent += 1
        }
        if sent > 0 { out.append(.countDelivered(sent)) }
        plan = current
        if !page.hasMore || page.events.isEmpty || reached.position >= current.upTo {
            finish(current, now: now, &out)
        }
        pump(now: now, &out)
    }

    private mutating func finish(_ done: ReadPlan, now: ContinuousClock.Instant, _ out: inout Output) {
        switch done.purpose {
        case .replay:
            guard userID != nil, done.counts == nil else {
                out.write(.text(ServerMessage.caughtUp(cursor: cursorText(reached), counts: done.counts)))
                plan = nil
                return
            }
            var waiting = done
            waiting.awaitingCounts = true
            plan = waiting
            out.append(.readCounts(atStreamSeq: reached.position))
        case .gap(let eventPosition):
            if reached.position < eventPosition { gapFallback = eventPosition }
            plan = nil
        case .catchUp:
            plan = nil
        }
    }

    private mutating func countsRead(_ counts: InboxCounts, now: ContinuousClock.Instant, _ out: inout Output) {
        guard let current = plan, current.awaitingCounts else { return }
        out.write(.text(ServerMessage.caughtUp(cursor: cursorText(reached), counts: counts)))
        plan = nil
        pump(now: now, &out)
    }

    // MARK: Live events

    private mutating func live(_ events: [StoredEvent], now: ContinuousClock.Instant, _ out: inout Output) {
        guard phase == .streaming || phase == .starting else { return }
        if overflowed { return }
        pending.append(contentsOf: events)
        pump(now: now, &out)
        if pending.count > configuration.liveCapacity {
            // Too slow for live delivery: drop what waits and read the log instead, once the
            // socket takes more.
            pending = []
            overflowed = true
            out.append(.countCatchUp)
            pump(now: now, &out)
        }
    }

    /// Does whatever can be done now: the next page of a read, the waiting live events, the
    /// acks they release, the next client message. Flushes once at the end.
    private mutating func pump(now: ContinuousClock.Instant, _ out: inout Output) {
        if phase == .streaming && writable {
            if plan == nil && overflowed {
                overflowed = false
                pending = []
                plan = ReadPlan(purpose: .catchUp, upTo: .max)
            }
            if plan == nil { deliverPending(&out) }
            if var current = plan, !current.reading, !current.awaitingCounts {
                // The next page once the socket has taken the last one.
                current.reading = true
                plan = current
                let limit = Int(min(Int64(configuration.pageSize), current.upTo - reached.position))
                out.append(.readPage(after: cursorText(reached), limit: limit))
            }
        }
        if phase == .streaming && plan?.purpose != .replay { releaseAcks(&out) }
        nextMessage(now: now, &out)
    }

    /// Sends the waiting live events in order until one needs the log first.
    private mutating func deliverPending(_ out: inout Output) {
        var index = 0
        var sent = 0
        defer {
            pending.removeFirst(index)
            if sent > 0 { out.append(.countDelivered(sent)) }
        }
        while index < pending.count {
            let event = pending[index]
            let next = position(of: event)
            if next <= reached.position {
                index += 1
                continue
            }
            let lacksCount = userID != nil && event.counts == nil
            if gapFallback == next {
                // The log did not have what came before it (or the event itself); send what
                // there is rather than waiting for ever.
                gapFallback = nil
                if !lacksCount {
                    send(event, &out)
                    sent += 1
                }
                index += 1
                continue
            }
            if lacksCount {
                // Seen in the log by the watcher, without the user's counts: read it.
                plan = ReadPlan(purpose: .gap(eventPosition: next), upTo: next)
                return
            }
            if next > reached.position + 1 {
                plan = ReadPlan(purpose: .gap(eventPosition: next), upTo: next - 1)
                return
            }
            send(event, &out)
            sent += 1
            index += 1
        }
    }

    private mutating func send(_ event: StoredEvent, _ out: inout Output) {
        let next = Reached(position: position(of: event), anchor: event.anchor)
        out.write(
            .text(
                StreamEventMessage.encode(
                    event, cursor: cursorText(next), counts: userID != nil ? event.counts : nil)))
        reached = next
    }

    private mutating func releaseAcks(_ out: inout Output) {
        guard !acks.isEmpty else { return }
        let last = reached.position
        var kept: [(after: Int64, message: [UInt8])] = []
        for ack in acks {
            if ack.after <= last { out.write(.text(ack.message)) } else { kept.append(ack) }
        }
        acks = kept
    }

    // MARK: Client messages

    private mutating func nextMessage(now: ContinuousClock.Instant, _ out: inout Output) {
        if phase == .streaming && plan?.purpose != .replay && !marking && !inbox.isEmpty {
            let text = inbox.removeFirst()
            do {
                let message = try ClientMessage(text)
                guard case .mark(let ref, let change) = message else { return }
                marking = true
                if let hello = accepted, case .user(let user) = hello.key,
                    hello.principal.role == .admin
                        || (hello.principal.role == .user && hello.principal.subject == user)
                {
                    out.append(.mark(ref: ref, change))
                } else {
                    out.append(.refuseMark(ref: ref))
                }
            } catch {
                close(fault: error, now: now, &out)
                return
            }
        }
        guard phase == .starting || phase == .streaming else { return }
        let wantsInput = inbox.isEmpty && !marking
        if wantsInput == readingPaused {
            readingPaused = !wantsInput
            out.append(wantsInput ? .resumeReading : .pauseReading)
        }
    }

    // MARK: The clock

    private mutating func tick(now: ContinuousClock.Instant, wallSeconds: Int64, _ out: inout Output) {
        if phase == .awaitingHello && now >= helloDeadline {
            close(fault: .timeout, now: now, &out)
            return
        }
        if flushesInFlight > 0 && now - writeProgress >= configuration.writeTimeout {
            // The client reads nothing: the close frame is queued behind what it has not read.
            out.append(.logStuckWriter)
            close(code: 4429, now: now, &out)
            return
        }
        if let expiresAt = accepted?.principal.expiresAt, wallSeconds >= expiresAt + TokenVerifier.leewaySeconds {
            close(fault: .expired, now: now, &out)
            return
        }
        if now - lastHeard >= configuration.pingInterval {
            if pingOutstanding && now - lastHeard >= configuration.pingInterval * 2 {
                // Nothing from the client for two intervals, not even a pong: going away.
                close(code: 1001, now: now, &out)
                return
            }
            if !pingOutstanding {
                pingOutstanding = true
                out.write(.ping)
            }
        }
    }

    // MARK: Closing

    private mutating func close(fault: StreamFault, now: ContinuousClock.Instant, _ out: inout Output) {
        out.write(.text(ServerMessage.error(fault)))
        close(code: fault.closeCode, reason: fault.message, now: now, &out)
    }

    /// Writes the close frame (after everything written before it) and waits for the client's
    /// answer until the close timeout.
    private mutating func close(code: UInt16, reason: String = "", now: ContinuousClock.Instant, _ out: inout Output) {
        guard phase != .closing && phase != .closed else { return }
        out.write(.close(code: code, reason: Self.closeReason(reason)))
        out.append(.countClosed(code: code))
        phase = .closing
        closeDeadline = now + configuration.closeTimeout
        pending = []
        acks = []
        inbox = []
    }

    /// A close frame's reason is at most 123 bytes of UTF-8 (RFC 6455, 5.5).
    static func closeReason(_ reason: String) -> String {
        var utf8 = Array(reason.utf8.prefix(123))
        while String(validating: utf8, as: UTF8.self) == nil { utf8.removeLast() }
        return String(decoding: utf8, as: UTF8.self)
    }

    /// The code to answer a client's close with: its own, when it may be sent (RFC 6455, 7.4).
    static func echoable(_ code: UInt16?) -> UInt16 {
        guard let code else { return 1000 }
        switch code {
        case 1000...1003, 1007...1011, 3000...4999: return code
        default: return 1000
        }
    }

    // MARK: Positions and cursors

    private func position(of event: StoredEvent) -> Int64 {
        userID != nil ? event.streamSeq : event.seq
    }

    /// The store's cursors, built without a round trip.
    func cursorText(_ reached: Reached) -> String {
        Cursor(epoch: configuration.epoch, stream: cursorStream, position: reached.position, anchor: reached.anchor)
            .text
    }
}

/// The actions one input produces: the frames written are flushed once, right after the last
/// of them (the handler learns from that write when the socket took the flush), and a close of
/// the channel comes last.
private struct Output {
    private var actions: [StreamDelivery.Action] = []
    private var closing: StreamDelivery.Action?
    private var lastWrite: Int?

    /// Frames were written.
    var wrote: Bool { lastWrite != nil }

    mutating func append(_ action: StreamDelivery.Action) { actions.append(action) }

    mutating func write(_ frame: StreamDelivery.OutboundFrame) {
        lastWrite = actions.count
        actions.append(.write(frame))
    }

    mutating func closeChannel(afterFlush: Bool) {
        closing = .closeChannel(afterFlush: afterFlush)
    }

    consuming func finish() -> [StreamDelivery.Action] {
        if let lastWrite { actions.insert(.flush, at: lastWrite + 1) }
        if let closing { actions.append(closing) }
        return actions
    }
}
