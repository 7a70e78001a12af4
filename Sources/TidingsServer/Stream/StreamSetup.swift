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
                stream: key.description, epoch: store.epochText,
                head: cursorText(Reached(position: start.head, anchor: start.anchor)),
                unreadCount: start.headUnreadCount))
        var last: Reached
        if let position = start.position {
            var unread: Int64?
            (last, unread) = try await replay(
                after: Reached(position: position, anchor: start.anchor), session: session)
            if userID != nil, unread == nil {
                unread = try await store.unreadCount(userID: userID!, atStreamSeq: position)
            }
            try await session.send(ServerMessage.caughtUp(cursor: cursorText(last), unreadCount: unread))
        } else {
            last = Reached(position: start.head, anchor: start.anchor)
            try await session.send(
                ServerMessage.reset(
                    reason: start.resetReason ?? .cursorAhead, head: cursorText(last),
                    unreadCount: start.headUnreadCount))
        }
        session.startedStreaming()
        try await session.delivered(position: last.position)
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
            try await session.delivered(position: last.position)
        }
    }

    /// How far the stream has gone: the last position sent, with the newest history it was
    /// seen in (what its cursor carries).
    private struct Reached {
        var position: Int64
        var anchor: CursorAnchor
    }

    private func reached(_ event: StoredEvent) -> Reached {
        Reached(position: userID != nil ? event.streamSeq : event.seq, anchor: event.anchor)
    }

    private func cursorText(_ reached: Reached) -> String {
        // The store's cursors, built without a round trip.
        Cursor(epoch: epoch, stream: cursorStream, position: reached.position, anchor: reached.anchor).text
    }

    /// A live event: skip what was already sent, fill a gap from the log, then send.
    private func deliverLive(_ event: StoredEvent, last: Reached, session: StreamSession) async throws -> Reached {
        let next = reached(event)
        var last = last
        if next.position <= last.position { return last }
        if userID != nil && event.unreadCount == nil {
            // Seen in the log by the watcher, without the user's unread count: read the stream.
            return try await replay(after: last, upTo: next.position, session: session).last
        }
        if next.position > last.position + 1 {
            last = try await replay(after: last, upTo: next.position - 1, session: session).last
            if next.position <= last.position { return last }
        }
        try await send(event, session: session)
        return next
    }

    /// Sends events from the log after `start` (through `upTo`, or to the head), page by
    /// page. Returns how far it went and the unread count as of there (user streams).
    private func replay(
        after start: Reached, upTo: Int64 = .max, session: StreamSession
    ) async throws -> (last: Reached, unread: Int64?) {
        let store = session.dependencies.store
        let pageSize = session.dependencies.configuration.replayPageSize
        var last = start
        var unread: Int64?
        while last.position < upTo {
            let limit = Int(min(Int64(pageSize), upTo - last.position))
            let page: EventPage
            if let userID {
                page = try await store.userEvents(userID: userID, after: cursorText(last), limit: limit)
            } else {
                page = try await store.allEvents(after: cursorText(last), filter: EventFilter(), limit: limit)
            }
            for event in page.events {
                try await send(event, session: session)
                last = reached(event)
                unread = event.unreadCount
            }
            try await session.delivered(position: last.position)
            if !page.hasMore || page.events.isEmpty { break }
        }
        return (last, unread)
    }

    private func send(_ event: StoredEvent, session: StreamSession) async throws {
        try await session.send(
            StreamEventMessage.encode(
                event, cursor: cursorText(reached(event)), unreadCount: userID != nil ? event.unreadCount : nil))
        session.dependencies.metrics.delivered()
    }
}
