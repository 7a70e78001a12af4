import NIOCore

/// How long each phase of an HTTP connection may take before the server closes it.
public struct HTTPDeadlines: Sendable, Equatable {
    /// From a connection's accept, or from the first byte of a later request, to the end of the
    /// request's head (a WebSocket upgrade's head too). Bytes that trickle in do not restart it.
    public var head: Duration = .seconds(10)
    /// From the end of a request's head to the end of its body.
    public var body: Duration = .seconds(60)
    /// From the end of a response to the first byte of the next request on a kept-alive
    /// connection. Longer than a proxy's own idle timeout (nginx keeps upstream connections 60 s),
    /// so the proxy closes first and never sends a request into a closing connection.
    public var idle: Duration = .seconds(75)
    /// How long the server's writes may wait on a client that reads nothing, from when the
    /// socket's buffers fill: any byte the socket sends restarts it, so a slow reader that keeps
    /// reading is never cut off.
    public var write: Duration = .seconds(60)

    public init() {}

    /// The shortest of the four: no phase that begins later can end sooner than this from now.
    var shortest: Duration { min(head, body, idle, write) }
}

/// The phases of one HTTP connection and the deadline that is running, kept apart from sockets
/// so that every rule can be tested alone. `ConnectionDeadlineHandler` feeds it what happens on
/// the channel and asks, when its timer fires, whether a deadline has passed.
struct ConnectionPhases {
    enum Phase: String, Sendable, CaseIterable {
        case head, body, idle, write
    }

    /// What the client is sending.
    private enum Reading {
        /// A head has begun (or the connection is new) and is not complete.
        case head(since: NIODeadline)
        /// The head is complete and the body is not.
        case body(since: NIODeadline)
        /// Between requests: nothing of the next one has arrived.
        case between(since: NIODeadline)
    }

    let deadlines: HTTPDeadlines
    private var reading: Reading
    /// Requests received whole whose responses have not ended.
    private var responsesOwed = 0
    /// True while the channel holds more unwritten bytes than its high watermark: the socket
    /// takes nothing more, and the writer waits on the client.
    private var stalled = false
    /// When writes stalled, or when TCP last sent the client anything since.
    private var writeProgress: NIODeadline

    init(deadlines: HTTPDeadlines, acceptedAt now: NIODeadline) {
        self.deadlines = deadlines
        reading = .head(since: now)
        writeProgress = now
    }

    /// Bytes arrived. Between requests they begin the next head; within one they change nothing.
    mutating func received(at now: NIODeadline) {
        if case .between = reading { reading = .head(since: now) }
    }

    /// A request's head was parsed.
    mutating func headEnded(at now: NIODeadline) {
        reading = .body(since: now)
    }

    /// A request was received whole: its response is now owed.
    mutating func requestEnded(at now: NIODeadline) {
        reading = .between(since: now)
        responsesOwed += 1
    }

    /// A response ended. The idle time of a kept-alive connection starts now, not when the
    /// request ended, so a slow handler does not eat into it.
    mutating func responseEnded(at now: NIODeadline) {
        responsesOwed = max(0, responsesOwed - 1)
        if case .between = reading { reading = .between(since: now) }
    }

    /// The channel became unwritable (its unwritten bytes passed the high watermark) or
    /// writable again. Only an unwritable channel has a write deadline: a response that fits in
    /// the socket's buffers waits on nobody, and its connection is timed as idle once it ends.
    mutating func writable(_ isWritable: Bool, at now: NIODeadline) {
        if !isWritable && !stalled { writeProgress = now }
        stalled = !isWritable
    }

    /// The socket last sent data to the client at `sent` (TCP's own record, asked for when the
    /// write deadline passes). A channel stays unwritable for as long as the kernel's buffer is
    /// more than half full, which for a slow reader can outlast the deadline; the kernel
    /// sending anything shows the client is reading.
    mutating func socketSent(at sent: NIODeadline) {
        if sent > writeProgress { writeProgress = sent }
    }

    /// The earliest deadline now running and its phase, or nil when none is (the server owes a
    /// response and is not waiting on the client).
    var next: (phase: Phase, at: NIODeadline)? {
        let read: (phase: Phase, at: NIODeadline)? =
            switch reading {
            case .head(let since): (.head, since + TimeAmount(deadlines.head))
            case .body(let since): (.body, since + TimeAmount(deadlines.body))
            case .between(let since) where responsesOwed == 0: (.idle, since + TimeAmount(deadlines.idle))
            case .between: nil
            }
        guard stalled else { return read }
        let write = (phase: Phase.write, at: writeProgress + TimeAmount(deadlines.write))
        guard let read else { return write }
        return write.at < read.at ? write : read
    }

    /// The phase whose deadline has passed at `now`, if one has.
    func expired(at now: NIODeadline) -> Phase? {
        guard let next, next.at <= now else { return nil }
        return next.phase
    }
}
