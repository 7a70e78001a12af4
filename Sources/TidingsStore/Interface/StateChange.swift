/// A change of a user's notifications' state, as `POST /v1/users/{user_id}/mark` and the
/// WebSocket `mark` message ask for it: one event per named notification, or one bulk event.
public struct StateChange: Sendable, Equatable {
    public enum Action: String, Sendable, CaseIterable {
        case read, unread, seen, archive, unarchive, snooze, unsnooze

        /// The event for one named notification.
        public var eventType: EventType {
            switch self {
            case .read: .read
            case .unread: .unread
            case .seen: .seen
            case .archive: .archived
            case .unarchive: .unarchived
            case .snooze: .snoozed
            case .unsnooze: .unsnoozed
            }
        }

        /// The bulk event of `all`, nil for the actions that have none.
        public var bulkType: EventType? {
            switch self {
            case .read: .readAll
            case .seen: .seenAll
            case .archive: .archivedAll
            default: nil
            }
        }
    }

    public enum Target: Sendable, Equatable {
        case notifications([String])
        /// Every notification created at or before `upToSeq` (all when nil), of `kind` when
        /// given; for `archive`, with `onlyRead`, only those already read.
        case all(upToSeq: Int64?, kind: String?, onlyRead: Bool)
    }

    public var action: Action
    public var target: Target
    /// `snooze`: when the snooze ends, in milliseconds since the epoch.
    public var until: Int64?

    public init(_ action: Action, _ target: Target, until: Int64? = nil) {
        self.action = action
        self.target = target
        self.until = until
    }

    /// The events that make the change, checked for the shape rules a request must meet.
    package func events(userID: String) throws -> [NewEvent] {
        if action == .snooze, until == nil { throw StoreError.badRequest("a snooze needs until: an RFC 3339 time") }
        if action != .snooze, until != nil { throw StoreError.badRequest("until belongs to snooze only") }
        switch target {
        case .notifications(let ids):
            guard ids.count <= Limits.readIdentifiersMax else {
                throw StoreError(
                    .payloadTooLarge,
                    "a request names at most \(Limits.readIdentifiersMax) notifications, not \(ids.count)")
            }
            for (index, id) in ids.enumerated() {
                if let problem = Identifier.problem(id.utf8) {
                    throw StoreError(.badRequest, "notification_ids[\(index)] \(problem)")
                }
            }
            return ids.map { id in
                var data = Array(#"{"notification_id":"#.utf8)
                JSONText.appendQuoted(id, to: &data)
                if let until {
                    data += Array(#","until":""#.utf8)
                    Timestamp.append(milliseconds: until, to: &data)
                    data.append(UInt8(ascii: "\""))
                }
                data.append(UInt8(ascii: "}"))
                return NewEvent(type: action.eventType.name, userID: userID, data: data)
            }
        case .all(let upToSeq, let kind, let onlyRead):
            guard let type = action.bulkType else {
                throw StoreError.badRequest(
                    "\(action.rawValue) names its notifications: all is for read, seen and archive")
            }
            if onlyRead && type != .archivedAll { throw StoreError.badRequest("only_read belongs to archive") }
            if let upToSeq, upToSeq < 1 { throw StoreError.badRequest("up_to_seq must be a positive integer seq") }
            var fields: [[UInt8]] = []
            if let upToSeq {
                var field = Array(#""up_to_seq":"#.utf8)
                JSONText.appendInteger(upToSeq, to: &field)
                fields.append(field)
            }
            if let kind {
                let count = kind.unicodeScalars.count
                guard count >= 1, count <= Limits.kindCharactersMax else {
                    throw StoreError.badRequest("kind must be 1-\(Limits.kindCharactersMax) characters")
                }
                var field = Array(#""kind":"#.utf8)
                JSONText.appendQuoted(kind, to: &field)
                fields.append(field)
            }
            if onlyRead { fields.append(Array(#""only_read":true"#.utf8)) }
            var data = Array("{".utf8)
            for (index, field) in fields.enumerated() {
                if index > 0 { data.append(UInt8(ascii: ",")) }
                data += field
            }
            data.append(UInt8(ascii: "}"))
            return [NewEvent(type: type.name, userID: userID, data: data)]
        }
    }
}
