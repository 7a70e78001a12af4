/// What the projection rules need to know about the state before an event: implemented by the
/// live projection (`ProjectionView`) and by a rebuild's in-memory state (`RebuildState`).
protocol ProjectionState {
    func head(user: Int64) throws -> (streamSeq: Int64, unread: Int64)
    /// Nil when the user never had the notification.
    func notification(_ key: NotificationKey) throws -> ProjectionView.Notification?
    /// Unread notifications the user created at or before `through`.
    func unreadCount(user: Int64, through: Int64) throws -> Int64
}

/// The rules of the unread projection: what one event does to a user's state.
///
/// The writer asks before appending (`evaluate`), which also decides `409 conflict` and `noop`;
/// catch-up and rebuild replay events already in the log (`effect`), which never refuses one.
enum ProjectionReducer {
    enum Verdict {
        case append(unreadAfter: Int64, target: Int64)
        case noop
        case conflict(String)
    }

    struct Input {
        var seq: Int64
        var userNo: Int64
        var type: EventType
        /// Key form of the notification id (created and read).
        var notification: [UInt8]
        var upToSeq: Int64?
        var unreadBefore: Int64
    }

    /// The created_seq bound a read_all marks: `up_to_seq` if given, never a notification that
    /// did not exist yet when the read_all was appended.
    static func readAllBound(seq: Int64, upToSeq: Int64?) -> Int64 {
        min(upToSeq ?? seq - 1, seq - 1)
    }

    static func evaluate(_ input: Input, view: some ProjectionState) throws -> Verdict {
        let key = NotificationKey(userNo: input.userNo, id: input.notification)
        switch input.type {
        case .created:
            if try view.notification(key) != nil {
                return .conflict("the user already has a notification with this notification_id")
            }
            return .append(unreadAfter: input.unreadBefore + 1, target: 0)
        case .read:
            guard let notification = try view.notification(key), notification.isUnread else { return .noop }
            return .append(unreadAfter: input.unreadBefore - 1, target: notification.createdSeq)
        case .readAll:
            let bound = readAllBound(seq: input.seq, upToSeq: input.upToSeq)
            let marked = bound > 0 ? try view.unreadCount(user: input.userNo, through: bound) : 0
            guard marked > 0 else { return .noop }
            return .append(unreadAfter: input.unreadBefore - marked, target: bound)
        }
    }

    /// The effect of an event already in the log.
    static func effect(_ input: Input, view: some ProjectionState) throws -> (unreadAfter: Int64, target: Int64) {
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
