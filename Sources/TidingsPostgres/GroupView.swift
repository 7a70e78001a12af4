import TidingsStore

/// The projection as one group transaction sees it: the rows it read ahead for its events
/// (their users, the notifications they name, every unread notification of users who read all),
/// with the group's own changes on top. The projection rules (`ProjectionReducer`) ask it; what
/// it changed is what the group writes back.
struct GroupView: ProjectionState {
    struct User {
        var userNo: Int64
        var userID: String
        var streamSeq: Int64
        var unread: Int64
        var isNew: Bool
        var changed = false
    }

    struct NotificationKey: Hashable {
        var userNo: Int64
        var id: [UInt8]
    }

    struct Notification {
        var createdSeq: Int64
        var isUnread: Bool
        var isNew: Bool
        var changed = false
    }

    private(set) var users: [Int64: User] = [:]
    private(set) var userNumbers: [String: Int64] = [:]
    /// Per user, the notifications read ahead or made in this group.
    private(set) var notifications: [Int64: [[UInt8]: Notification]] = [:]
    /// Users whose every unread notification is in `notifications`.
    private var completeUnread: Set<Int64> = []
    var nextUserNo: Int64

    /// How to put back each change, newest last: a failed request undoes its own.
    private enum Undo {
        case user(Int64, User?)
        case userNumber(String)
        case notification(Int64, [UInt8], Notification?)
        case completeUnread(Int64)
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
            case .notification(let user, let id, let state): notifications[user, default: [:]][id] = state
            case .completeUnread(let user): completeUnread.remove(user)
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

    mutating func load(userNo: Int64, id: [UInt8], createdSeq: Int64, isUnread: Bool) {
        notifications[userNo, default: [:]][id] = Notification(createdSeq: createdSeq, isUnread: isUnread, isNew: false)
    }

    mutating func markUnreadComplete(userNo: Int64) {
        completeUnread.insert(userNo)
    }

    // MARK: ProjectionState

    func head(user: Int64) throws -> (streamSeq: Int64, unread: Int64) {
        guard let state = users[user] else { return (0, 0) }
        return (state.streamSeq, state.unread)
    }

    func notification(user: Int64, id: [UInt8]) throws -> NotificationState? {
        guard let state = notifications[user]?[id] else { return nil }
        return NotificationState(createdSeq: state.createdSeq, isUnread: state.isUnread)
    }

    func unreadCount(user: Int64, through: Int64) throws -> Int64 {
        precondition(completeUnread.contains(user), "a read_all's unread notifications are read ahead")
        var count: Int64 = 0
        for state in notifications[user, default: [:]].values where state.isUnread && state.createdSeq <= through {
            count += 1
        }
        return count
    }

    // MARK: Changes

    /// The user's number, making the user when new.
    mutating func userNo(for userID: String) -> Int64 {
        if let number = userNumbers[userID] { return number }
        let number = nextUserNo
        nextUserNo += 1
        journal.append(.user(number, nil))
        journal.append(.userNumber(userID))
        load(user: User(userNo: number, userID: userID, streamSeq: 0, unread: 0, isNew: true))
        if completeUnread.insert(number).inserted { journal.append(.completeUnread(number)) }
        return number
    }

    func existingUserNo(_ userID: String) -> Int64? { userNumbers[userID] }

    mutating func advance(user: Int64, streamSeq: Int64, unread: Int64) {
        journal.append(.user(user, users[user]))
        users[user]!.streamSeq = streamSeq
        users[user]!.unread = unread
        users[user]!.changed = true
    }

    mutating func create(user: Int64, id: [UInt8], seq: Int64) {
        journal.append(.notification(user, id, notifications[user]?[id]))
        notifications[user, default: [:]][id] = Notification(
            createdSeq: seq, isUnread: true, isNew: true, changed: true)
    }

    mutating func read(user: Int64, id: [UInt8], seq: Int64) {
        journal.append(.notification(user, id, notifications[user]?[id]))
        notifications[user]![id]!.isUnread = false
        notifications[user]![id]!.changed = true
    }

    /// Marks every unread notification created at or before `through` read; returns their ids,
    /// oldest first.
    mutating func readAll(user: Int64, through: Int64, seq: Int64) -> [[UInt8]] {
        var marked: [(Int64, [UInt8])] = []
        for (id, state) in notifications[user, default: [:]] where state.isUnread && state.createdSeq <= through {
            marked.append((state.createdSeq, id))
        }
        marked.sort { $0.0 < $1.0 }
        for (_, id) in marked { read(user: user, id: id, seq: seq) }
        return marked.map(\.1)
    }
}
