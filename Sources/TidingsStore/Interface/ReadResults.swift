/// A page of a stream: `{"events","next_cursor","has_more"}`.
public struct EventPage: Sendable {
    public let events: [StoredEvent]
    public let nextCursor: String
    public let hasMore: Bool
    package init(events: [StoredEvent], nextCursor: String, hasMore: Bool) {
        self.events = events
        self.nextCursor = nextCursor
        self.hasMore = hasMore
    }
}

/// What live delivery reads of the log at once (`EventStore.liveEvents`): the events of the
/// users it wants, and how far the read looked, which may be past the last of them.
public struct LivePage: Sendable {
    public let events: [StoredEvent]
    /// The last seq the read looked at, with the anchor of its history; nil when there was none.
    public let through: (seq: Int64, anchor: CursorAnchor)?
    public let hasMore: Bool
    package init(events: [StoredEvent], through: (seq: Int64, anchor: CursorAnchor)?, hasMore: Bool) {
        self.events = events
        self.through = through
        self.hasMore = hasMore
    }
}

/// A user's unread state: the counts, the oldest unread notifications, the stream head.
public struct UnreadSnapshot: Sendable {
    public let counts: InboxCounts
    public var unreadCount: Int64 { counts.unread }
    public let notifications: [StoredEvent]
    public let cursor: String
    package init(counts: InboxCounts, notifications: [StoredEvent], cursor: String) {
        self.counts = counts
        self.notifications = notifications
        self.cursor = cursor
    }
}

/// Filters of the `all` stream. Empty `types` means every type.
public struct EventFilter: Sendable {
    public var types: Set<EventType> = []
    public var userID: String?
    /// Inclusive, milliseconds since the epoch.
    public var since: Int64?
    /// Exclusive.
    public var until: Int64?

    public init(types: Set<EventType> = [], userID: String? = nil, since: Int64? = nil, until: Int64? = nil) {
        self.types = types
        self.userID = userID
        self.since = since
        self.until = until
    }

    /// True when every event matches.
    package var isEmpty: Bool {
        (types.isEmpty || types.count == EventType.allCases.count) && userID == nil && since == nil && until == nil
    }

    package var typeMask: Int {
        types.isEmpty ? EventType.allMask : types.reduce(0) { $0 | $1.maskBit }
    }

    package func matches(_ record: LogRecord) -> Bool {
        if typeMask & record.type.maskBit == 0 { return false }
        if let since, record.timestampMilliseconds < since { return false }
        if let until, record.timestampMilliseconds >= until { return false }
        return true
    }
}

extension EventFilter {
    package func matches(_ record: RecordView) -> Bool {
        if typeMask & record.type.maskBit == 0 { return false }
        if let since, record.timestampMilliseconds < since { return false }
        if let until, record.timestampMilliseconds >= until { return false }
        return true
    }
}

/// Where a live stream starts: the head at the moment, and the position to replay from (or why
/// the client's cursor cannot be used and it must start over from the head).
public struct StreamStart: Sendable, Equatable {
    /// The stream's head position (stream_seq for user streams, seq for `all`).
    public let head: Int64
    /// The log's head in the snapshot that checked the cursor: the anchor of the stream's
    /// cursors until an event brings its own.
    public let anchor: CursorAnchor
    /// User streams: the counts as of the head.
    public let headCounts: InboxCounts?
    /// The position to replay after; nil when the cursor was reset.
    public let position: Int64?
    public let resetReason: StoreError.ResetReason?
    package init(
        head: Int64, anchor: CursorAnchor, headCounts: InboxCounts? = nil, position: Int64? = nil,
        resetReason: StoreError.ResetReason? = nil
    ) {
        self.head = head
        self.anchor = anchor
        self.headCounts = headCounts
        self.position = position
        self.resetReason = resetReason
    }
}

extension ReadOutcome {
    /// The answer to a read that marks nothing (no id was unread): the user's head as it is.
    package static func unchanged(userID: String, store: some EventStore) async throws -> ReadOutcome {
        let head = try await store.userHead(userID: userID)
        return ReadOutcome(
            read: [], counts: head.counts,
            cursor: store.userCursor(userID, streamSeq: head.streamSeq, anchor: head.anchor),
            headStreamSeq: head.streamSeq, lastSeq: nil)
    }

    /// The answer to a read of `notificationIDs` whose `notification.read` events got `results`
    /// (in request order), with the user's head after it.
    package static func of(
        read notificationIDs: [String], results: [AppendResult], head: (streamSeq: Int64, counts: InboxCounts),
        cursor: String
    ) -> ReadOutcome {
        var read: [String] = []
        for (index, result) in results.enumerated() where result.status == .appended {
            read.append(notificationIDs[index])
        }
        return ReadOutcome(
            read: read, counts: head.counts, cursor: cursor, headStreamSeq: head.streamSeq,
            lastSeq: results.last { $0.status == .appended }?.event?.seq)
    }
}
