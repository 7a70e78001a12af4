/// A snooze whose end has passed and which nothing has ended yet: the server appends its
/// `notification.unsnoozed` (docs/PROTOCOL.md, "Inbox states"). No state changes by the clock
/// alone, so the end of a snooze is an event like any other.
public struct DueSnooze: Sendable, Equatable {
    public let userID: String
    public let notificationID: String
    /// The seq of the notification's `notification.created`.
    public let createdSeq: Int64
    /// When the snooze ends, in milliseconds since the epoch.
    public let until: Int64

    public init(userID: String, notificationID: String, createdSeq: Int64, until: Int64) {
        self.userID = userID
        self.notificationID = notificationID
        self.createdSeq = createdSeq
        self.until = until
    }

    /// The event that ends exactly this snooze. Its `until` makes it a `noop` when the snooze
    /// was moved or ended meanwhile, and its id is derived from the snooze, so every process or
    /// node that notices the same snooze appends one event between them (the others get
    /// `duplicate`).
    public var unsnoozeEvent: NewEvent {
        var data = Array(#"{"notification_id":"#.utf8)
        JSONText.appendQuoted(notificationID, to: &data)
        data += Array(#","until":""#.utf8)
        Timestamp.append(milliseconds: until, to: &data)
        data += Array(#""}"#.utf8)
        return NewEvent(
            type: EventType.unsnoozed.name, userID: userID, id: "tidings:unsnooze:\(createdSeq):\(until)", data: data)
    }

    /// The due snoozes of `states` (snoozed, by created seq) whose created events are `events`.
    package static func of(_ states: [NotificationState], createdEvents events: [StoredEvent]) -> [DueSnooze] {
        let untils = Dictionary(
            states.map { ($0.createdSeq, $0.snoozedUntil) }, uniquingKeysWith: { first, _ in first })
        return events.compactMap { event in
            guard let until = untils[event.seq],
                let id = (try? JSONValue.parse(event.data))?["notification_id"]?.stringValue
            else { return nil }
            return DueSnooze(userID: event.userID, notificationID: id, createdSeq: event.seq, until: until)
        }
        .sorted { ($0.until, $0.createdSeq) < ($1.until, $1.createdSeq) }
    }
}
