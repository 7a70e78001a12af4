import TidingsStore

/// The projection as one group transaction sees it: the rows it read ahead for its events
/// (their users, the notifications they name, and for users with a bulk event every
/// notification that event may select), with the group's own changes on top. The projection
/// rules (`ProjectionReducer`) ask it; what it changed is what the group writes back.
struct GroupView: ProjectionState {
    struct User {
        var userNo: Int64
        var userID: String
        var streamSeq: Int64
        var counts: InboxCounts
        var isNew: Bool
        var changed = false
    }

    struct Notification {
        var state: NotificationState
        /// `data.kind` of its created event.
        var kind: [UInt8]?
        var changed = false
    }

    /// Which notifications of a user were read ahead in full.
    struct Completeness: OptionSet, Hashable {
        let rawValue: UInt8
        /// Every unread one (and so every unseen one: a notification read is seen).
        static let unread = Completeness(rawValue: 1)
        /// Every one not archived.
        static let unarchived = Completeness(rawValue: 2)
    }

    private(set) var users: [Int64: User] = [:]
    private(set) var userNumbers: [String: Int64] = [:]
    /// Per user, the notifications read ahead or made in this group, by id (key form).
    private(set) var notifications: [Int64: [[UInt8]: Notification]] = [:]
    /// Per user, the ids of those notifications by created seq.
    private var idsBySeq: [Int64: [Int64: [UInt8]]] = [:]
    private var complete: [Int64: Completeness] = [:]
    var nextUserNo: Int64

    /// How to put back each change, newest last: a failed request undoes its own.
    private enum Undo {
        case user(Int64, User?)
        case userNumber(String)
        case notification(Int64, [UInt8], Notification?)
        case complete(Int64, Completeness?)
    }
    private var journal: [Undo] = []

    var journalMark: Int { journal.count }

    mutating func undo(to mark: Int) {
        while journal.count > mark {
            switch journal.removeLast() {
            case .user(let number, let state):
                users[number] = state
                if state == nil { nextUserNo -= 1 }
            case .userNumber(let name): userNumbers[name] = nil
            case .notification(let user, let id, let state):
                if let state {
                    idsBySeq[user, default: [:]][state.state.createdSeq] = id
                } else if let current = notifications[user]?[id] {
                    idsBySeq[user]?[current.state.createdSeq] = nil
                }
                notifications[user, default: [:]][id] = state
            case .complete(let user, let state): complete[user] = state
            }
        }
    }

    init(nextUserNo: Int64) {
        self.nextUserNo = nextUserNo
    }

    // MARK: Loading what was read ahead

    mutating func load(user: User) {
        users[user.userNo] = user
        userNumbers[user.userID] = user.userNo
    }

    mutating func load(userNo: Int64, id: [UInt8], state: NotificationState, kind: [UInt8]?) {
        notifications[userNo, default: [:]][id] = Notification(state: state, kind: kind)
        idsBySeq[userNo, default: [:]][state.createdSeq] = id
    }

    mutating func markComplete(userNo: Int64, _ completeness: Completeness) {
        complete[userNo, default: []].formUnion(completeness)
    }

    // MARK: ProjectionState

    func head(user: Int64) throws -> (streamSeq: Int64, counts: InboxCounts) {
        guard let state = users[user] else { return (0, .zero) }
        return (state.streamSeq, state.counts)
    }

    func notification(user: Int64, id: [UInt8]) throws -> NotificationState? {
        notifications[user]?[id]?.state
    }

    func notifications(user: Int64, through: Int64, mask: UInt8, value: UInt8) throws -> [NotificationState] {
        let needs: Completeness =
            value & mask & NotificationState.unreadFlag != 0 || value & mask & NotificationState.unseenFlag != 0
            ? .unread : .unarchived
        precondition(
            complete[user, default: []].contains(needs), "a bulk event's notifications are read ahead")
        return notifications[user, default: [:]].values.lazy.map(\.state)
            .filter { $0.createdSeq <= through && $0.flags & mask == value }
            .sorted { $0.createdSeq < $1.createdSeq }
    }

    func notificationHasKind(_ kind: [UInt8], user: Int64, createdSeq: Int64) throws -> Bool {
        guard let id = idsBySeq[user]?[createdSeq] else { return false }
        return notifications[user]?[id]?.kind == kind
    }

    // MARK: Changes

    /// The user's number, making the user when new.
    mutating func userNo(for userID: String) -> Int64 {
        if let number = userNumbers[userID] { return number }
        let number = nextUserNo
        nextUserNo += 1
        journal.append(.user(number, nil))
        journal.append(.userNumber(userID))
        load(user: User(userNo: number, userID: userID, streamSeq: 0, counts: .zero, isNew: true))
        journal.append(.complete(number, complete[number]))
        complete[number] = [.unread, .unarchived]
        return number
    }

    func existingUserNo(_ userID: String) -> Int64? { userNumbers[userID] }

    /// The notification id (key form) of the user's notification created at `createdSeq`.
    func id(user: Int64, createdSeq: Int64) -> [UInt8]? { idsBySeq[user]?[createdSeq] }

    mutating func advance(user: Int64, streamSeq: Int64, counts: InboxCounts) {
        journal.append(.user(user, users[user]))
        users[user]!.streamSeq = streamSeq
        users[user]!.counts = counts
        users[user]!.changed = true
    }

    mutating func create(user: Int64, id: [UInt8], state: NotificationState, kind: [UInt8]?) {
        journal.append(.notification(user, id, notifications[user]?[id]))
        notifications[user, default: [:]][id] = Notification(state: state, kind: kind, changed: true)
        idsBySeq[user, default: [:]][state.createdSeq] = id
    }

    /// Sets the state of a notification the group knows; returns its id.
    @discardableResult
    mutating func set(user: Int64, _ state: NotificationState) -> [UInt8] {
        let id = idsBySeq[user]![state.createdSeq]!
        journal.append(.notification(user, id, notifications[user]?[id]))
        notifications[user]![id]!.state = state
        notifications[user]![id]!.changed = true
        return id
    }
}
