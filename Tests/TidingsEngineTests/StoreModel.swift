@testable import TidingsStore

/// A deliberately simple in-memory implementation of the protocol's append and inbox rules, for
/// property tests to compare the store against. It reads each event's fields from its `data`.
struct StoreModel {
    struct Event: Equatable {
        var seq: Int64
        var streamSeq: Int64
        var userID: String
        var id: String?
        var type: EventType
        var data: String
        var countsAfter: InboxCounts
    }

    enum Outcome: Equatable {
        case appended(seq: Int64)
        case duplicate(seq: Int64)
        case noop
    }

    struct Notification: Equatable {
        var kind: String?
        var unread = true
        var unseen = true
        var archived = false
        /// Milliseconds; nil unless snoozed.
        var snoozedUntil: Int64?
        var hidden: Bool { archived || snoozedUntil != nil }
    }

    struct UserState {
        var events: [Int64] = []
        /// Created seq by notification id.
        var notifications: [String: Int64] = [:]
        /// Each notification's state by created seq.
        var states: [Int64: Notification] = [:]

        /// Created seqs of unread notifications, oldest first.
        var unread: [Int64] { states.keys.sorted().filter { states[$0]!.unread } }

        var counts: InboxCounts {
            var counts = InboxCounts.zero
            for state in states.values {
                if state.unread && !state.hidden { counts.unread += 1 }
                if state.unseen && !state.hidden { counts.unseen += 1 }
                if state.archived { counts.archived += 1 }
            }
            return counts
        }
    }

    private(set) var events: [Event] = []
    private(set) var users: [String: UserState] = [:]
    private var ids: [String: Int64] = [:]

    /// Applies a request; nil when it fails as a whole (a conflict), leaving the model unchanged.
    mutating func append(_ request: [NewEvent]) -> [Outcome]? {
        let saved = self
        var outcomes: [Outcome] = []
        for event in request {
            guard let outcome = apply(event) else {
                self = saved
                return nil
            }
            outcomes.append(outcome)
        }
        return outcomes
    }

    private mutating func apply(_ event: NewEvent) -> Outcome? {
        let type = EventType(name: event.type)!
        let data = String(decoding: event.data, as: UTF8.self)
        if let id = event.id, let seq = ids[id] {
            let original = events[Int(seq - 1)]
            guard original.type == type, original.userID == event.userID, original.data == data else { return nil }
            return .duplicate(seq: seq)
        }
        let fields = try! JSONValue.parse(event.data)
        var user = users[event.userID] ?? UserState()
        let seq = Int64(events.count + 1)
        let notification = fields["notification_id"]?.stringValue
        if type == .created {
            if user.notifications[notification!] != nil { return nil }
            user.notifications[notification!] = seq
            user.states[seq] = Notification(kind: fields["kind"]?.stringValue)
        } else if type.isBulk {
            let bound = min(fields["up_to_seq"]?.integerValue ?? seq - 1, seq - 1)
            let kind = fields["kind"]?.stringValue
            let onlyRead = fields["only_read"]?.boolValue ?? false
            var changed = false
            for (created, var state) in user.states where created <= bound && (kind == nil || state.kind == kind) {
                switch type {
                case .readAll where state.unread:
                    state.unread = false
                    state.unseen = false
                case .seenAll where state.unseen: state.unseen = false
                case .archivedAll where !state.archived && (!onlyRead || !state.unread): state.archived = true
                default: continue
                }
                user.states[created] = state
                changed = true
            }
            if !changed { return .noop }
        } else {
            guard let created = user.notifications[notification!], var state = user.states[created] else {
                return .noop
            }
            let before = state
            switch type {
            case .read:
                state.unread = false
                state.unseen = false
            case .unread: state.unread = true
            case .seen: state.unseen = false
            case .archived: state.archived = true
            case .unarchived: state.archived = false
            case .snoozed: state.snoozedUntil = Timestamp.parse(fields["until"]!.stringValue!)
            case .unsnoozed:
                // With `until`, only the snooze that ends exactly then.
                if let until = fields["until"]?.stringValue, Timestamp.parse(until) != state.snoozedUntil { break }
                state.snoozedUntil = nil
            default: break
            }
            if state == before { return .noop }
            user.states[created] = state
        }
        user.events.append(seq)
        if let id = event.id { ids[id] = seq }
        events.append(
            Event(
                seq: seq, streamSeq: Int64(user.events.count), userID: event.userID, id: event.id, type: type,
                data: data, countsAfter: user.counts))
        users[event.userID] = user
        return .appended(seq: seq)
    }
}
