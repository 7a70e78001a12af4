@testable import TidingsStore

/// A deliberately simple in-memory implementation of the protocol's append and projection
/// rules, for property tests to compare the store against.
struct StoreModel {
    struct Event: Equatable {
        var seq: Int64
        var streamSeq: Int64
        var userID: String
        var id: String?
        var type: EventType
        var data: String
        var unreadAfter: Int64
    }

    enum Outcome: Equatable {
        case appended(seq: Int64)
        case duplicate(seq: Int64)
        case noop
    }

    struct UserState {
        var events: [Int64] = []
        var notifications: [String: Int64] = [:]
        var unread: [Int64] = []
    }

    private(set) var events: [Event] = []
    private(set) var users: [String: UserState] = [:]
    private var ids: [String: Int64] = [:]

    /// Applies a request; nil when it fails as a whole (a conflict), leaving the model unchanged.
    mutating func append(_ request: [(NewEvent, notification: String?, upTo: Int64?)]) -> [Outcome]? {
        let saved = self
        var outcomes: [Outcome] = []
        for (event, notification, upTo) in request {
            guard let outcome = apply(event, notification: notification, upTo: upTo) else {
                self = saved
                return nil
            }
            outcomes.append(outcome)
        }
        return outcomes
    }

    private mutating func apply(_ event: NewEvent, notification: String?, upTo: Int64?) -> Outcome? {
        let type = EventType(name: event.type)!
        let data = String(decoding: event.data, as: UTF8.self)
        if let id = event.id, let seq = ids[id] {
            let original = events[Int(seq - 1)]
            guard original.type == type, original.userID == event.userID, original.data == data else { return nil }
            return .duplicate(seq: seq)
        }
        var user = users[event.userID] ?? UserState()
        let seq = Int64(events.count + 1)
        let unreadBefore = Int64(user.unread.count)
        switch type {
        case .created:
            if user.notifications[notification!] != nil { return nil }
            user.notifications[notification!] = seq
            user.unread.append(seq)
        case .read:
            guard let createdSeq = user.notifications[notification!], let index = user.unread.firstIndex(of: createdSeq)
            else { return .noop }
            user.unread.remove(at: index)
        case .readAll:
            let bound = min(upTo ?? seq - 1, seq - 1)
            let remaining = user.unread.filter { $0 > bound }
            if remaining.count == user.unread.count { return .noop }
            user.unread = remaining
        }
        _ = unreadBefore
        user.events.append(seq)
        if let id = event.id { ids[id] = seq }
        events.append(
            Event(
                seq: seq, streamSeq: Int64(user.events.count), userID: event.userID, id: event.id, type: type,
                data: data,
                unreadAfter: Int64(user.unread.count)))
        users[event.userID] = user
        return .appended(seq: seq)
    }
}
