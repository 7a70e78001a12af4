/// An event as a client submits it: `{"type","user_id","id"?,"data"}`. Nothing is checked when
/// it is made; `Store.append` checks every field and limit and reports the first problem.
public struct NewEvent: Sendable, Equatable {
    public var type: String
    public var userID: String
    /// The client's idempotency key; nil lets the server assign one.
    public var id: String?
    /// The `data` object as JSON bytes (whitespace is dropped when stored).
    public var data: [UInt8]

    public init(type: String, userID: String, id: String? = nil, data: [UInt8]) {
        self.type = type
        self.userID = userID
        self.id = id
        self.data = data
    }

    public init(type: EventType, userID: String, id: String? = nil, data: String) {
        self.init(type: type.name, userID: userID, id: id, data: Array(data.utf8))
    }
}

/// What one appended event became.
public struct AppendResult: Sendable, Equatable {
    public enum Status: String, Sendable {
        case appended, duplicate, noop
    }

    public let status: Status
    /// The event as it is in the log; nil for `noop`.
    public let event: StoredEvent?
    package init(status: Status, event: StoredEvent?) {
        self.status = status
        self.event = event
    }
}

/// An event as stored in the log.
public struct StoredEvent: Sendable, Equatable {
    public let seq: Int64
    public let streamSeq: Int64
    public let userID: String
    public let id: String
    public let type: EventType
    /// Milliseconds since 1970-01-01T00:00:00Z.
    public let timestampMilliseconds: Int64
    /// The compact JSON of `data`, exactly as stored.
    public let data: [UInt8]
    /// The user's counts just after this event, when the read looked them up (user streams and
    /// append results); nil on the `all` stream, where they are not needed.
    public var counts: InboxCounts?
    /// The user's unread count just after this event, when the read looked it up.
    public var unreadCount: Int64? { counts?.unread }
    /// Where the read or commit that produced this event stood in the log's history: this
    /// event's own seq and chain hash, or the head of the snapshot it was read in. Its cursors
    /// carry it.
    public let anchor: CursorAnchor

    public init(
        seq: Int64, streamSeq: Int64, userID: String, id: String, type: EventType, timestampMilliseconds: Int64,
        data: [UInt8], counts: InboxCounts?, anchor: CursorAnchor
    ) {
        precondition(anchor.seq >= seq, "an event's anchor is at or after the event")
        self.seq = seq
        self.streamSeq = streamSeq
        self.userID = userID
        self.id = id
        self.type = type
        self.timestampMilliseconds = timestampMilliseconds
        self.data = data
        self.counts = counts
        self.anchor = anchor
    }

    /// The same event: the anchor says where it was read, not what it is.
    public static func == (lhs: StoredEvent, rhs: StoredEvent) -> Bool {
        lhs.seq == rhs.seq && lhs.streamSeq == rhs.streamSeq && lhs.userID == rhs.userID && lhs.id == rhs.id
            && lhs.type == rhs.type && lhs.timestampMilliseconds == rhs.timestampMilliseconds && lhs.data == rhs.data
            && lhs.counts == rhs.counts
    }
}

extension StoredEvent {
    /// The public form of a record read in place, its id derived from the seq when the client
    /// gave none.
    package init(
        seq: Int64, view record: RecordView, userID: String, derivedIDs: DerivedEventID, counts: InboxCounts?,
        anchor: CursorAnchor
    ) throws {
        var notification: [UInt8] = []
        if !record.notificationID.isEmpty { RecordView.appendIdentifierText(record.notificationID, to: &notification) }
        var data: [UInt8] = []
        data.reserveCapacity(record.transformedData.count * 2)
        do {
            try DataTransform.decode(record.transformedData, notificationID: notification, into: &data)
        } catch {
            throw StoreError(.internal, "the log is damaged: data of event \(seq) does not decode (\(error))")
        }
        var id: [UInt8] = []
        if record.explicitID.isEmpty {
            derivedIDs.append(seq: seq, to: &id)
        } else {
            RecordView.appendIdentifierText(record.explicitID, to: &id)
        }
        self.init(
            seq: seq, streamSeq: record.streamSeq, userID: userID, id: String(decoding: id, as: UTF8.self),
            type: record.type, timestampMilliseconds: record.timestampMilliseconds, data: data,
            counts: counts, anchor: anchor)
    }

    /// The public form of a decoded record.
    package init(
        seq: Int64, record: LogRecord, userID: String, derivedIDs: DerivedEventID, counts: InboxCounts?,
        anchor: CursorAnchor
    ) throws {
        let data: [UInt8]
        do {
            data = try record.data()
        } catch {
            throw StoreError(.internal, "the log is damaged: data of event \(seq) does not decode (\(error))")
        }
        self.init(
            seq: seq, streamSeq: record.streamSeq, userID: userID,
            id: String(decoding: record.explicitID ?? derivedIDs.text(seq: seq), as: UTF8.self), type: record.type,
            timestampMilliseconds: record.timestampMilliseconds, data: data, counts: counts, anchor: anchor)
    }
}
