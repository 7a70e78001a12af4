import TidingsFanout
import TidingsStore

/// A stream accepted by its hello: who asked, which stream, from where. `run` does the welcome,
/// the replay and the live loop.
struct StreamSetup: Sendable {
    let principal: Principal
    let key: StreamKey
    let cursor: String?
    private let epoch: UInt64
    /// The cursors' stream identity, hashed once rather than for every event.
    private let cursorStream: Cursor.Stream

    init(principal: Principal, key: StreamKey, cursor: String?, epoch: UInt64) {
        self.principal = principal
        self.key = key
        self.cursor = cursor
        self.epoch = epoch
        if case .user(let id) = key {
            cursorStream = .user(hash: Cursor.userHash(id))
        } else {
            cursorStream = .all
        }
    }

    private var userID: String? {
        if case .user(let id) = key { return id }
        return nil
    }

    func run(_ session: StreamSession) async throws {
        let store = session.dependencies.store
        session.remember(self)
        // Subscribe before reading the log: nothing committed in between can be missed.
        let subscription = session.dependencies.hub.subscribe(key)
        session.attach(subscription)
        session.dependencies.metrics.opened()
        if session.isClosing { return }
        let start: StreamStart
        do {
            if let userID {
                start = try await store.startUserStream(userID: userID, cursor: cursor)
            } else {
                start = try await store.startAllStream(cursor: cursor)
            }
        } catch let error as StoreError where error.code == .invalidCursor {
            throw StreamFault.invalidCursor(error.message)
        } catch let error as StoreError where error.code == .badRequest {
            throw StreamFault.badRequest(error.message)
        }
        try await session.send(
            ServerMessage.welcome(
                stream: key.description, epoch: store.epochText, head: cursorText(start.head),
                unreadCount: start.headUnreadCount))
        var last: Int64
        if let position = start.position {
            var unread: Int64?
            (last, unread) = try await replay(after: position, session: session)
            if userID != nil, unread == nil {
                unread = try await store.unreadCount(userID: userID!, atStreamSeq: position)
            }
            try await session.send(ServerMessage.caughtUp(cursor: cursorText(last), unreadCount: unread))
        } else {
            last = start.head
            try await session.send(
                ServerMessage.reset(
                    reason: start.resetReason ?? .cursorAhead, head: cursorText(start.head),
                    unreadCount: start.headUnreadCount))
        }
        session.startedStreaming()
        try await session.delivered(position: last)
        while true {
            switch await subscription.next() {
            case .events(let events):
                for event in events { last = try await deliverLive(event, last: last, session: session) }
            case .overflowed:
                // Too slow for live delivery: read what was missed from the log, at the
                // client's pace, then go live again.
                session.dependencies.metrics.caughtUp()
                subscription.resumeLive()
                last = try await replay(after: last, session: session).last
            case .nudged:
                break
            case .closed:
                return
            }
            try await session.delivered(position: last)
        }
    }

    private func position(_ event: StoredEvent) -> Int64 {
        userID != nil ? event.streamSeq : event.seq
    }

    private func cursorText(_ position: Int64) -> String {
        // The store's cursors, built without a round trip.
        Cursor(epoch: epoch, stream: cursorStream, position: position).text
    }

    /// A live event: skip what was already sent, fill a gap from the log, then send.
    private func deliverLive(_ event: StoredEvent, last: Int64, session: StreamSession) async throws -> Int64 {
        let eventPosition = position(event)
        var last = last
        if eventPosition <= last { return last }
        if userID != nil && event.unreadCount == nil {
            // Seen in the log by the watcher, without the user's unread count: read the stream.
            return try await replay(after: last, upTo: eventPosition, session: session).last
        }
        if eventPosition > last + 1 {
            last = try await replay(after: last, upTo: eventPosition - 1, session: session).last
            if eventPosition <= last { return last }
        }
        try await send(event, session: session)
        return eventPosition
    }

    /// Sends events from the log after `start` (through `upTo`, or to the head), page by
    /// page. Returns the last position sent and the unread count as of it (user streams).
    private func replay(
        after start: Int64, upTo: Int64 = .max, session: StreamSession
    ) async throws -> (last: Int64, unread: Int64?) {
        let store = session.dependencies.store
        let pageSize = session.dependencies.configuration.replayPageSize
        var last = start
        var unread: Int64?
        while last < upTo {
            let limit = Int(min(Int64(pageSize), upTo - last))
            let page: EventPage
            if let userID {
                page = try await store.userEvents(userID: userID, after: cursorText(last), limit: limit)
            } else {
                page = try await store.allEvents(after: cursorText(last), filter: EventFilter(), limit: limit)
            }
            for event in page.events {
                try await send(event, session: session)
                last = position(event)
                unread = event.unreadCount
            }
            try await session.delivered(position: last)
            if !page.hasMore || page.events.isEmpty { break }
        }
        return (last, unread)
    }

    private func send(_ event: StoredEvent, session: StreamSession) async throws {
        let cursor = userID != nil ? cursorText(event.streamSeq) : cursorText(event.seq)
        try await session.send(
            StreamEventMessage.encode(event, cursor: cursor, unreadCount: userID != nil ? event.unreadCount : nil))
        session.dependencies.metrics.delivered()
    }
}
