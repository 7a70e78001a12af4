/// The counts an inbox shows, as of one position of a user's stream. A notification that is
/// archived or snoozed counts in neither `unread` nor `unseen`.
public struct InboxCounts: Sendable, Hashable {
    public var unread: Int64
    public var unseen: Int64
    public var archived: Int64

    public init(unread: Int64 = 0, unseen: Int64 = 0, archived: Int64 = 0) {
        self.unread = unread
        self.unseen = unseen
        self.archived = archived
    }

    public static let zero = InboxCounts()

    @inlinable
    package static func + (lhs: InboxCounts, rhs: InboxCounts) -> InboxCounts {
        InboxCounts(
            unread: lhs.unread + rhs.unread, unseen: lhs.unseen + rhs.unseen, archived: lhs.archived + rhs.archived)
    }

    @inlinable
    package static func - (lhs: InboxCounts, rhs: InboxCounts) -> InboxCounts {
        InboxCounts(
            unread: lhs.unread - rhs.unread, unseen: lhs.unseen - rhs.unseen, archived: lhs.archived - rhs.archived)
    }
}

/// One notification's state as the projection keeps it: a flag byte and the time a snooze ends.
/// Every state changes only by an event of the log.
package struct NotificationState: Equatable, Sendable {
    package static let unreadFlag: UInt8 = 1
    package static let unseenFlag: UInt8 = 2
    package static let archivedFlag: UInt8 = 4
    package static let snoozedFlag: UInt8 = 8
    /// The flags of a notification just created.
    package static let createdFlags: UInt8 = unreadFlag | unseenFlag

    package var createdSeq: Int64
    package var flags: UInt8
    /// Milliseconds since the epoch; 0 unless snoozed.
    package var snoozedUntil: Int64

    @inlinable
    package init(createdSeq: Int64, flags: UInt8 = NotificationState.createdFlags, snoozedUntil: Int64 = 0) {
        self.createdSeq = createdSeq
        self.flags = flags
        self.snoozedUntil = snoozedUntil
    }

    @inlinable package var isUnread: Bool { flags & Self.unreadFlag != 0 }
    @inlinable package var isUnseen: Bool { flags & Self.unseenFlag != 0 }
    @inlinable package var isArchived: Bool { flags & Self.archivedFlag != 0 }
    @inlinable package var isSnoozed: Bool { flags & Self.snoozedFlag != 0 }

    /// What this notification adds to its user's counts.
    @inlinable
    package var counts: InboxCounts {
        let hidden = flags & (Self.archivedFlag | Self.snoozedFlag) != 0
        return InboxCounts(
            unread: !hidden && isUnread ? 1 : 0, unseen: !hidden && isUnseen ? 1 : 0, archived: isArchived ? 1 : 0)
    }

    /// The same notification with `set` flags set and `clear` flags cleared.
    @inlinable
    package func with(set: UInt8 = 0, clear: UInt8 = 0, snoozedUntil until: Int64? = nil) -> NotificationState {
        var next = self
        next.flags = (flags & ~clear) | set
        if let until { next.snoozedUntil = until }
        if next.flags & Self.snoozedFlag == 0 { next.snoozedUntil = 0 }
        return next
    }
}

/// What a bulk event selects beyond its seq bound, and what a snooze sets: read from the
/// event's `data`, which is where the log keeps them.
package struct EventOptions: Equatable, Sendable {
    /// Bulk events: only notifications of this kind. Created events (as validated): the
    /// notification's kind. The JSON string's characters, unescaped.
    package var kind: [UInt8]?
    /// `archived_all`: only notifications already read.
    package var onlyRead: Bool = false
    /// `snoozed`: when the snooze ends, in milliseconds since the epoch. `unsnoozed`: when
    /// given (not 0), the end of the only snooze it ends.
    package var until: Int64 = 0

    package init(kind: [UInt8]? = nil, onlyRead: Bool = false, until: Int64 = 0) {
        self.kind = kind
        self.onlyRead = onlyRead
        self.until = until
    }

    package static let none = EventOptions()
}

extension EventOptions {
    /// True when events of `type` carry options in their `data`.
    @inlinable
    package static func carried(by type: EventType) -> Bool {
        type.isBulk || type == .snoozed || type == .unsnoozed
    }

    /// The options in an event's compact `data`.
    package init(type: EventType, data: [UInt8]) {
        guard Self.carried(by: type), let value = try? JSONValue.parse(data) else {
            self = .none
            return
        }
        self.init(
            kind: value["kind"]?.stringValue.map { Array($0.utf8) }, onlyRead: value["only_read"]?.boolValue ?? false,
            until: value["until"]?.stringValue.flatMap(Timestamp.parse) ?? 0)
    }

    /// The options of a record read in place (its data is decoded only for the types that
    /// carry options, which are rare).
    package init(record: RecordView) throws {
        guard Self.carried(by: record.type) else {
            self = .none
            return
        }
        var notification: [UInt8] = []
        if !record.notificationID.isEmpty { RecordView.appendIdentifierText(record.notificationID, to: &notification) }
        var data: [UInt8] = []
        try DataTransform.decode(record.transformedData, notificationID: notification, into: &data)
        self.init(type: record.type, data: data)
    }
}

/// The `data.kind` test of bulk events' kind filters.
package enum NotificationKind {
    /// True when the compact `data` of a created event has a top-level `kind` equal to `kind`
    /// (its characters, unescaped).
    package static func matches(_ kind: [UInt8], data: [UInt8]) -> Bool {
        of(data: data) == kind
    }

    /// The top-level `kind` of a compact `data` object (its characters, unescaped), nil when
    /// it has none.
    private static let kindKey = Array("kind".utf8)

    package static func of(data: [UInt8]) -> [UInt8]? {
        data.withUnsafeBytes { bytes -> [UInt8]? in
            var scanner = JSONScanner(bytes)
            do {
                try scanner.expect(UInt8(ascii: "{"), "'{'")
                guard scanner.peek() != UInt8(ascii: "}") else { return nil }
                while true {
                    let key = try scanner.scanString()
                    try scanner.expect(UInt8(ascii: ":"), "':'")
                    let isKind =
                        key.hasEscapes
                        ? scanner.decodedString(key) == kindKey
                        : UnsafeRawBufferPointer(rebasing: bytes[key.start..<key.end]).elementsEqual(kindKey)
                    if isKind {
                        guard scanner.peek() == UInt8(ascii: "\"") else { return nil }
                        return scanner.decodedString(try scanner.scanString())
                    }
                    _ = try scanner.skipValue()
                    guard scanner.peek() == UInt8(ascii: ",") else { return nil }
                    try scanner.expect(UInt8(ascii: ","), "','")
                }
            } catch {
                return nil
            }
        }
    }
}
