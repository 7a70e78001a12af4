import Glibc

/// Which of a user's notifications a list read returns (`GET /v1/users/{user_id}/notifications`).
public struct NotificationListFilter: Sendable, Equatable {
    public enum State: String, Sendable, CaseIterable {
        /// Those neither archived nor snoozed: what an inbox shows.
        case inbox
        /// Every notification the user has.
        case all
        /// Those not read yet (archived and snoozed ones too).
        case unread
        /// Those not seen yet (archived and snoozed ones too).
        case unseen
        /// Those archived.
        case archived
        /// Those snoozed.
        case snoozed

        /// The state flags a notification of this filter has: `flags & mask == value`.
        package var selection: (mask: UInt8, value: UInt8) {
            switch self {
            case .inbox: (NotificationState.archivedFlag | NotificationState.snoozedFlag, 0)
            case .all: (0, 0)
            case .unread: (NotificationState.unreadFlag, NotificationState.unreadFlag)
            case .unseen: (NotificationState.unseenFlag, NotificationState.unseenFlag)
            case .archived: (NotificationState.archivedFlag, NotificationState.archivedFlag)
            case .snoozed: (NotificationState.snoozedFlag, NotificationState.snoozedFlag)
            }
        }
    }

    public var state: State
    /// Only notifications whose `data.kind` is exactly this; nil: any kind, or none.
    public var kind: String?

    public init(state: State = .inbox, kind: String? = nil) {
        self.state = state
        self.kind = kind
    }

    package func check() throws {
        guard let kind else { return }
        let count = kind.unicodeScalars.count
        guard count >= 1, count <= Limits.kindCharactersMax else {
            throw StoreError.badRequest("kind must be 1-\(Limits.kindCharactersMax) characters")
        }
    }

    /// A test a record passes when it may be a notification this filter lists, cheap enough to
    /// run on every record before it is decoded: a `notification.created`, and with a kind,
    /// whose stored data holds `"kind":"<kind>"` as the log stores it (`DataTransform`). A
    /// record whose data has a backslash may spell the kind with escapes, so it passes too;
    /// `matchesKind` decides exactly after decoding.
    package var recordTest: RecordTest { RecordTest(kind: kind) }

    package struct RecordTest: Sendable {
        /// `"kind":"<kind>"` transformed; nil when the kind itself needs escapes in JSON.
        let needle: [UInt8]?
        let filtersKind: Bool

        init(kind: String?) {
            filtersKind = kind != nil
            guard let kind, !kind.utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) else {
                needle = nil
                return
            }
            var encoded: [UInt8] = []
            DataTransform.encode(Array(#"{"kind":"\#(kind)"}"#.utf8), notificationID: [], into: &encoded)
            needle = Array(encoded.dropFirst().dropLast())
        }

        package func admits(_ record: RecordView) -> Bool {
            guard record.type == .created else { return false }
            guard filtersKind, let needle else { return true }
            let data = record.transformedData
            guard let base = data.baseAddress else { return false }
            // memchr and memcmp: the generic `contains` and `firstRange` took longer than the
            // decoding they save. The needle starts with the kind key's token, a rare byte.
            if memchr(base, 0x5C, data.count) != nil { return true }
            return needle.withUnsafeBytes { needle in
                var offset = 0
                while offset + needle.count <= data.count {
                    guard let hit = memchr(base + offset, Int32(needle[0]), data.count - needle.count - offset + 1)
                    else { return false }
                    if memcmp(hit, needle.baseAddress!, needle.count) == 0 { return true }
                    offset = base.distance(to: UnsafeRawPointer(hit)) + 1
                }
                return false
            }
        }
    }

    /// Whether a `notification.created` event passes the kind filter.
    package func matchesKind(_ event: StoredEvent) -> Bool {
        guard let kind else { return true }
        return NotificationKind.matches(Array(kind.utf8), data: event.data)
    }

}

/// One notification of a list: its `notification.created` event and its state as of the list.
public struct ListedNotification: Sendable, Equatable {
    public let event: StoredEvent
    public let isRead: Bool
    public let isSeen: Bool
    public let isArchived: Bool
    /// When the snooze ends (milliseconds since the epoch); nil unless snoozed.
    public let snoozedUntil: Int64?

    package init(event: StoredEvent, state: NotificationState) {
        self.event = event
        isRead = !state.isUnread
        isSeen = !state.isUnseen
        isArchived = state.isArchived
        snoozedUntil = state.isSnoozed ? state.snoozedUntil : nil
    }
}

/// A page of a user's notifications, newest first, read from the projection in one snapshot.
public struct NotificationList: Sendable {
    public let notifications: [ListedNotification]
    /// The user's counts as of the page.
    public let counts: InboxCounts
    public var unreadCount: Int64 { counts.unread }
    /// The head of the user stream as of the page: a client that lists and then streams from
    /// here misses nothing and sees nothing twice.
    public let cursor: String
    /// Where the next page starts: the position of the oldest notification listed (or the
    /// `before` given, or the stream's start, on an empty page). Never nil.
    public let nextBefore: String
    /// True exactly when an older notification passes the filter.
    public let hasMore: Bool
}

/// Gathers a list page as an engine walks a user's notifications from the newest: it keeps the
/// created events that pass the filter and stops wanting more one past the limit, which is how
/// `hasMore` is exact. Both engines fill it; the page's shape is decided here once.
package struct NotificationListBuilder {
    package let filter: NotificationListFilter
    package let limit: Int
    /// How many stream entries or unread seqs an engine reads at a time while walking back:
    /// about twice the page, since most of a stream is `notification.created`.
    package let window: Int
    package private(set) var items: [ListedNotification] = []

    package init(filter: NotificationListFilter, limit: Int) {
        self.filter = filter
        self.limit = limit
        window = min(max(2 * (limit + 1), 16), 1_024)
    }

    /// One more than the page holds is found.
    package var isFull: Bool { items.count > limit }

    /// Offers the next older event with its notification's state; events other than
    /// `notification.created`, and those the filter rejects, are passed over.
    package mutating func offer(_ event: StoredEvent, state: NotificationState) {
        guard !isFull, event.type == .created, filter.matchesKind(event) else { return }
        let selection = filter.state.selection
        guard state.flags & selection.mask == selection.value else { return }
        items.append(ListedNotification(event: event, state: state))
    }

    package func page(
        store: some EventStore, userID: String, before: String?, head: (streamSeq: Int64, counts: InboxCounts),
        anchor: CursorAnchor
    ) -> NotificationList {
        let listed = Array(items.prefix(limit))
        let next =
            listed.last.map { store.cursor(of: $0.event, userStream: true) } ?? before
            ?? store.userCursor(userID, streamSeq: 0, anchor: anchor)
        return NotificationList(
            notifications: listed, counts: head.counts,
            cursor: store.userCursor(userID, streamSeq: head.streamSeq, anchor: anchor), nextBefore: next,
            hasMore: items.count > limit)
    }
}
