/// The user's counts as of one position of a stream (docs/PROTOCOL.md, "Counts").
public struct Counts: Sendable, Hashable, Codable {
    public var unread: Int64
    public var unseen: Int64
    public var archived: Int64

    public init(unread: Int64, unseen: Int64, archived: Int64) {
        self.unread = unread
        self.unseen = unseen
        self.archived = archived
    }
}

/// An event as the server sends it (docs/PROTOCOL.md, "Event envelope").
public struct Envelope: Sendable, Hashable, Codable {
    public var seq: Int64
    /// The position in the user's stream (absent on the `all` stream's exports).
    public var streamSeq: Int64?
    public var userID: String
    public var id: String
    public var type: String
    public var ts: String
    public var data: TidingsJSON
    public var cursor: String

    enum CodingKeys: String, CodingKey {
        case seq, id, type, ts, data, cursor
        case streamSeq = "stream_seq"
        case userID = "user_id"
    }
}

/// An event to append. `id` left nil gets a UUID made on the client, before the first try.
public struct NewEvent: Sendable, Hashable, Codable {
    public var type: String
    public var userID: String
    public var id: String?
    public var data: TidingsJSON

    public init(type: String, userID: String, id: String? = nil, data: TidingsJSON) {
        self.type = type
        self.userID = userID
        self.id = id
        self.data = data
    }

    enum CodingKeys: String, CodingKey {
        case type, id, data
        case userID = "user_id"
    }
}

/// What one appended event became: `appended`, `duplicate` (of an earlier event with its id) or
/// `noop` (it changed nothing; no event).
public struct AppendResult: Sendable, Hashable, Codable {
    public var status: String
    public var event: Envelope?
}

/// A state change, as `POST /v1/users/{user_id}/mark` and the stream's `mark` take it.
public struct StateChange: Sendable, Hashable, Encodable {
    public enum Change: String, Sendable, Codable {
        case read, unread, seen, archive, unarchive, snooze, unsnooze
    }

    public var change: Change
    public var notificationIDs: [String]?
    public var all: Bool?
    public var upToSeq: Int64?
    public var kind: String?
    public var onlyRead: Bool?
    /// `snooze`: when it ends, RFC 3339.
    public var until: String?

    /// A change of these notifications.
    public init(_ change: Change, _ notificationIDs: [String], until: String? = nil) {
        self.change = change
        self.notificationIDs = notificationIDs
        self.until = until
    }

    /// `read`, `seen` or `archive` of every notification up to `upToSeq` (of `kind`).
    public static func all(
        _ change: Change, upToSeq: Int64? = nil, kind: String? = nil, onlyRead: Bool? = nil
    )
        -> StateChange
    {
        var value = StateChange(change, [])
        value.notificationIDs = nil
        value.all = true
        value.upToSeq = upToSeq
        value.kind = kind
        value.onlyRead = onlyRead
        return value
    }

    enum CodingKeys: String, CodingKey {
        case change, all, kind, until
        case notificationIDs = "notification_ids"
        case upToSeq = "up_to_seq"
        case onlyRead = "only_read"
    }
}

/// `POST /v1/users/{user_id}/mark`'s answer (and `/read`'s, whose `read` is `changed`).
public struct MarkAnswer: Sendable, Hashable {
    public var changed: [String]
    public var counts: Counts
    public var cursor: String
}

/// `GET /v1/users/{user_id}/unread`'s answer.
public struct UnreadAnswer: Sendable, Hashable {
    public var counts: Counts
    public var notifications: [Envelope]
    public var cursor: String
}

/// A notification as `GET /v1/users/{user_id}/notifications` lists it.
public struct ListedNotification: Sendable, Hashable, Codable {
    public var read: Bool
    public var seen: Bool
    public var archived: Bool
    public var snoozedUntil: String?
    public var event: Envelope

    enum CodingKeys: String, CodingKey {
        case read, seen, archived, event
        case snoozedUntil = "snoozed_until"
    }
}

/// A page of the notification list.
public struct NotificationList: Sendable, Hashable {
    public var notifications: [ListedNotification]
    public var counts: Counts
    public var cursor: String
    public var nextBefore: String
    public var hasMore: Bool
}

/// A page of a stream read over HTTP.
public struct EventPage: Sendable, Hashable, Codable {
    public var events: [Envelope]
    public var nextCursor: String
    public var hasMore: Bool

    enum CodingKeys: String, CodingKey {
        case events
        case nextCursor = "next_cursor"
        case hasMore = "has_more"
    }
}

/// The answer to a change sent over the stream: `ok` (something changed) or `noop`, with the
/// counts after it.
public struct Ack: Sendable, Hashable {
    public var status: String
    public var counts: Counts?

    public init(status: String, counts: Counts?) {
        self.status = status
        self.counts = counts
    }
}

/// A failure the application can act on: an HTTP error answer (`status` and the server's
/// `code`), a stream closed for good (`closeCode`), a timeout, or a network failure (`status` 0).
public struct TidingsError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The server's error code, or `network`, `timeout`, `closed`, `not_connected`.
    public var code: String
    public var message: String
    public var status: Int
    public var closeCode: Int?
    public var index: Int?

    public init(_ code: String, _ message: String, status: Int = 0, closeCode: Int? = nil, index: Int? = nil) {
        self.code = code
        self.message = message
        self.status = status
        self.closeCode = closeCode
        self.index = index
    }

    public var description: String { "\(code): \(message)" }
}

/// The wire forms the answers above are read from.
struct CountsFields: Decodable {
    var unreadCount: Int64
    var unseenCount: Int64
    var archivedCount: Int64

    var counts: Counts { Counts(unread: unreadCount, unseen: unseenCount, archived: archivedCount) }

    enum CodingKeys: String, CodingKey {
        case unreadCount = "unread_count"
        case unseenCount = "unseen_count"
        case archivedCount = "archived_count"
    }
}
