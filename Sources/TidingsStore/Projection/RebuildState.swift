/// The whole projection computed in memory from the log, for a rebuild or a verify. It applies
/// the same rules (`ProjectionReducer`) as the live projection, to different storage.
struct RebuildState: ProjectionState {
    struct UserState {
        var entries: [StreamEntry] = []
        var notifications: [[UInt8]: Int64] = [:]
        var unread: Set<Int64> = []
    }

    private(set) var users: [Int64: UserState] = [:]
    private(set) var explicitIDs: [(Int64, Int64)] = []
    private(set) var lastSeq: Int64 = 0

    func head(user: Int64) -> (streamSeq: Int64, unread: Int64) {
        guard let last = users[user]?.entries.last else { return (0, 0) }
        return (last.streamSeq, last.unreadAfter)
    }

    func notification(_ key: NotificationKey) -> ProjectionView.Notification? {
        guard let user = users[key.userNo], let created = user.notifications[key.id] else { return nil }
        return ProjectionView.Notification(createdSeq: created, isUnread: user.unread.contains(created))
    }

    func unreadCount(user: Int64, through: Int64) -> Int64 {
        guard let state = users[user] else { return 0 }
        return Int64(state.unread.lazy.filter { $0 <= through }.count)
    }

    mutating func apply(seq: Int64, record: LogRecord) throws {
        let key = record.type == .readAll ? [] : CompactIdentifier.key(record.notificationID)
        let before = head(user: record.userNo)
        let effect = try ProjectionReducer.effect(
            ProjectionReducer.Input(
                seq: seq, userNo: record.userNo, type: record.type, notification: key, upToSeq: record.upToSeq,
                unreadBefore: before.unread),
            view: self)
        var state = users.removeValue(forKey: record.userNo) ?? UserState()
        state.entries.append(StreamEntry(streamSeq: record.streamSeq, seq: seq, unreadAfter: effect.unreadAfter))
        switch record.type {
        case .created:
            state.notifications[key] = seq
            state.unread.insert(seq)
        case .read:
            if effect.target > 0 { state.unread.remove(effect.target) }
        case .readAll:
            state.unread = state.unread.filter { $0 > effect.target }
        }
        users[record.userNo] = state
        if let id = record.explicitID { explicitIDs.append((ProjectionBase.idHash(id), seq)) }
        lastSeq = seq
    }
}

extension ProjectionCheckpoint {
    /// Rows of the complete projection, for empty tables.
    init(rebuilt state: RebuildState, entriesPerRowMax: Int = 1_024) {
        self.init(events: [][...], from: 0)
        for (user, userState) in state.users {
            var start = 0
            while start < userState.entries.count {
                let end = min(start + entriesPerRowMax, userState.entries.count)
                userEvents.append(
                    UserEventsRow(
                        userNo: user, firstStreamSeq: userState.entries[start].streamSeq,
                        entries: ProjectionBase.encodeEntries(userState.entries[start..<end])))
                start = end
            }
            for (id, created) in userState.notifications {
                notifications.append(NotificationRow(userNo: user, id: id, createdSeq: created))
            }
            for created in userState.unread { unreadInserts.append((user, created)) }
        }
        eventIDs = state.explicitIDs
        userEvents.sort { ($0.userNo, $0.firstStreamSeq) < ($1.userNo, $1.firstStreamSeq) }
        notifications.sort { $0.userNo != $1.userNo ? $0.userNo < $1.userNo : $0.id.lexicographicallyPrecedes($1.id) }
        unreadInserts.sort { $0 < $1 }
        eventIDs.sort { $0 < $1 }
    }
}
