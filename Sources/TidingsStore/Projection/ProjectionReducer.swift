/// What the projection rules need to know about the state before an event: implemented by the
/// live projection (`ProjectionView`) and by a rebuild's in-memory state (`RebuildState`).
package protocol ProjectionState {
    /// How the state names a notification: key form bytes, or a packed form of them.
    associatedtype NotificationID

    func head(user: Int64) throws -> (streamSeq: Int64, unread: Int64)
    /// Nil when the user never had the notification.
    func notification(user: Int64, id: NotificationID) throws -> NotificationState?
    /// Unread notifications the user created at or before `through`.
    func unreadCount(user: Int64, through: Int64) throws -> Int64
}

/// A notification's state as the projection rules see it.
package struct NotificationState: Equatable {
    package var createdSeq: Int64
    package var isUnread: Bool

    package init(createdSeq: Int64, isUnread: Bool) {
        self.createdSeq = createdSeq
        self.isUnread = isUnread
    }
}

/// The rules of the unread projection: what one event does to a user's state. Inlinable, so
/// that each engine's call is specialised for its own state type rather than going through
/// generic witnesses on every event.
///
/// The writer asks before appending (`evaluate`), which also decides `409 conflict` and `noop`;
/// catch-up and rebuild replay events already in the log (`effect`), which never refuses one.
package enum ProjectionReducer {
    package enum Verdict {
        case append(unreadAfter: Int64, target: Int64)
        case noop
        case conflict(String)
    }

    package struct Input<NotificationID> {
        package var seq: Int64
        package var userNo: Int64
        package var type: EventType
        /// The notification id (created and read) as the state names it.
        package var notification: NotificationID
        package var upToSeq: Int64?
        package var unreadBefore: Int64

        @inlinable
        package init(
            seq: Int64, userNo: Int64, type: EventType, notification: NotificationID, upToSeq: Int64? = nil,
            unreadBefore: Int64
        ) {
            self.seq = seq
            self.userNo = userNo
            self.type = type
            self.notification = notification
            self.upToSeq = upToSeq
            self.unreadBefore = unreadBefore
        }

    }

    /// The created_seq bound a read_all marks: `up_to_seq` if given, never a notification that
    /// did not exist yet when the read_all was appended.
    @inlinable
    package static func readAllBound(seq: Int64, upToSeq: Int64?) -> Int64 {
        min(upToSeq ?? seq - 1, seq - 1)
    }

    @inlinable
    package static func evaluate<State: ProjectionState>(
        _ input: Input<State.NotificationID>, view: State
    ) throws -> Verdict {
        switch input.type {
        case .created:
            if try view.notification(user: input.userNo, id: input.notification) != nil {
                return .conflict("the user already has a notification with this notification_id")
            }
            return .append(unreadAfter: input.unreadBefore + 1, target: 0)
        case .read:
            guard let notification = try view.notification(user: input.userNo, id: input.notification),
                notification.isUnread
            else { return .noop }
            return .append(unreadAfter: input.unreadBefore - 1, target: notification.createdSeq)
        case .readAll:
            let bound = readAllBound(seq: input.seq, upToSeq: input.upToSeq)
            let marked = bound > 0 ? try view.unreadCount(user: input.userNo, through: bound) : 0
            guard marked > 0 else { return .noop }
            return .append(unreadAfter: input.unreadBefore - marked, target: bound)
        }
    }

    /// The effect of an event already in the log.
    @inlinable
    package static func effect<State: ProjectionState>(
        _ input: Input<State.NotificationID>, view: State
    ) throws -> (unreadAfter: Int64, target: Int64) {
        switch try evaluate(input, view: view) {
        case .append(let unreadAfter, let target): return (unreadAfter, target)
        case .noop:
            // Recorded but changing nothing: possible only if the rules changed since.
            return (
                input.unreadBefore, input.type == .readAll ? readAllBound(seq: input.seq, upToSeq: input.upToSeq) : 0
            )
        case .conflict:
            // A second created of one notification cannot be appended; count it as new.
            return (input.unreadBefore + 1, 0)
        }
    }
}
