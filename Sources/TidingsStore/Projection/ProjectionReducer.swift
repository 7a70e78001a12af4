/// What the projection rules need to know about the state before an event: implemented by the
/// live projections (`ProjectionView`, `GroupView`) and by a rebuild's in-memory state
/// (`RebuildState`).
package protocol ProjectionState {
    /// How the state names a notification: key form bytes, or a packed form of them.
    associatedtype NotificationID

    /// The user's stream head and counts.
    func head(user: Int64) throws -> (streamSeq: Int64, counts: InboxCounts)
    /// Nil when the user never had the notification.
    func notification(user: Int64, id: NotificationID) throws -> NotificationState?
    /// The user's notifications created at or before `through` whose `flags & mask == value`,
    /// oldest first.
    func notifications(user: Int64, through: Int64, mask: UInt8, value: UInt8) throws -> [NotificationState]
    /// True when the user's notification created at `createdSeq` has `data.kind` equal to `kind`.
    func notificationHasKind(_ kind: [UInt8], user: Int64, createdSeq: Int64) throws -> Bool
}

/// The rules of the inbox projection: what one event does to a user's notifications and counts.
/// Inlinable, so that each engine's call is specialised for its own state type rather than going
/// through generic witnesses on every event.
///
/// The writer asks before appending (`evaluate`), which also decides `409 conflict` and `noop`;
/// catch-up and rebuild replay events already in the log (`effect`), which never refuses one.
/// A bulk event's effect is the list of notifications it changed, worked out against the state
/// before it, so that every engine stores changes one notification at a time.
package enum ProjectionReducer {
    package enum Verdict {
        /// `changes` holds each changed notification's state after the event.
        case append(countsAfter: InboxCounts, changes: [NotificationState])
        case noop
        case conflict(String)
    }

    package struct Input<NotificationID> {
        package var seq: Int64
        package var userNo: Int64
        package var type: EventType
        /// The notification id as the state names it (ignored for the bulk types).
        package var notification: NotificationID
        package var upToSeq: Int64?
        package var options: EventOptions
        package var countsBefore: InboxCounts

        @inlinable
        package init(
            seq: Int64, userNo: Int64, type: EventType, notification: NotificationID, upToSeq: Int64? = nil,
            options: EventOptions = .none, countsBefore: InboxCounts
        ) {
            self.seq = seq
            self.userNo = userNo
            self.type = type
            self.notification = notification
            self.upToSeq = upToSeq
            self.options = options
            self.countsBefore = countsBefore
        }
    }

    /// The created_seq bound a bulk event covers: `up_to_seq` if given, never a notification
    /// that did not exist yet when the event was appended.
    @inlinable
    package static func bulkBound(seq: Int64, upToSeq: Int64?) -> Int64 {
        min(upToSeq ?? seq - 1, seq - 1)
    }

    @inlinable
    package static func evaluate<State: ProjectionState>(
        _ input: Input<State.NotificationID>, view: State
    ) throws -> Verdict {
        if input.type == .created {
            if try view.notification(user: input.userNo, id: input.notification) != nil {
                return .conflict("the user already has a notification with this notification_id")
            }
            let created = NotificationState(createdSeq: input.seq)
            return .append(countsAfter: input.countsBefore + created.counts, changes: [created])
        }
        if input.type.isBulk { return try evaluateBulk(input, view: view) }
        guard let current = try view.notification(user: input.userNo, id: input.notification) else { return .noop }
        let next: NotificationState
        switch input.type {
        // A notification read has been seen: unseen ones are always unread too.
        case .read: next = current.with(clear: NotificationState.unreadFlag | NotificationState.unseenFlag)
        case .unread: next = current.with(set: NotificationState.unreadFlag)
        case .seen: next = current.with(clear: NotificationState.unseenFlag)
        case .archived: next = current.with(set: NotificationState.archivedFlag)
        case .unarchived: next = current.with(clear: NotificationState.archivedFlag)
        case .snoozed:
            next = current.with(set: NotificationState.snoozedFlag, snoozedUntil: input.options.until)
        case .unsnoozed:
            // With `until`, it ends that snooze only: the server's own unsnooze of a snooze that
            // was moved or ended meanwhile changes nothing.
            if input.options.until != 0 && input.options.until != current.snoozedUntil { return .noop }
            next = current.with(clear: NotificationState.snoozedFlag)
        case .created, .readAll, .seenAll, .archivedAll: return .noop
        }
        guard next != current else { return .noop }
        return .append(countsAfter: input.countsBefore - current.counts + next.counts, changes: [next])
    }

    /// read_all, seen_all and archived_all: every notification up to the bound (of the kind, and
    /// read for `only_read`) whose flag the event changes.
    @inlinable
    package static func evaluateBulk<State: ProjectionState>(
        _ input: Input<State.NotificationID>, view: State
    ) throws -> Verdict {
        let bound = bulkBound(seq: input.seq, upToSeq: input.upToSeq)
        guard bound > 0 else { return .noop }
        let mask: UInt8
        let value: UInt8
        var set: UInt8 = 0
        var clear: UInt8 = 0
        switch input.type {
        case .readAll:
            (mask, value) = (NotificationState.unreadFlag, NotificationState.unreadFlag)
            clear = NotificationState.unreadFlag | NotificationState.unseenFlag
        case .seenAll:
            (mask, value) = (NotificationState.unseenFlag, NotificationState.unseenFlag)
            clear = NotificationState.unseenFlag
        default:
            mask = NotificationState.archivedFlag | (input.options.onlyRead ? NotificationState.unreadFlag : 0)
            value = 0
            set = NotificationState.archivedFlag
        }
        var selected = try view.notifications(user: input.userNo, through: bound, mask: mask, value: value)
        if let kind = input.options.kind {
            selected = try selected.filter {
                try view.notificationHasKind(kind, user: input.userNo, createdSeq: $0.createdSeq)
            }
        }
        guard !selected.isEmpty else { return .noop }
        var counts = input.countsBefore
        var changes: [NotificationState] = []
        changes.reserveCapacity(selected.count)
        for current in selected {
            let next = current.with(set: set, clear: clear)
            counts = counts - current.counts + next.counts
            changes.append(next)
        }
        return .append(countsAfter: counts, changes: changes)
    }

    /// The effect of an event already in the log.
    @inlinable
    package static func effect<State: ProjectionState>(
        _ input: Input<State.NotificationID>, view: State
    ) throws -> (countsAfter: InboxCounts, changes: [NotificationState]) {
        switch try evaluate(input, view: view) {
        case .append(let countsAfter, let changes): return (countsAfter, changes)
        case .noop:
            // Recorded but changing nothing: possible only if the rules changed since.
            return (input.countsBefore, [])
        case .conflict:
            // A second created of one notification cannot be appended; count it as new.
            let created = NotificationState(createdSeq: input.seq)
            return (input.countsBefore + created.counts, [created])
        }
    }
}
