/// The whole projection computed in memory from the log, for a rebuild or a verify. It applies
/// the same rules (`ProjectionReducer`) as the live projection, to different storage, shaped for
/// a million events a second: users in an array indexed by user number, unread flags in a bitset
/// indexed by seq, notification ids packed into integers, no allocation per event.
package struct RebuildState: ProjectionState, Sendable {
    package struct User: Sendable {
        package var streamSeq: Int64 = 0
        package var unread: Int64 = 0
        package var entries: [StreamEntry] = []
        /// The user's notifications in created order.
        package var created: [(seq: Int64, id: PackedNotificationID)] = []
        /// Every notification in `created` before this index is read: a read_all passed it.
        package var readAllIndex = 0
    }

    private struct Key: Hashable, Sendable {
        package var userNo: Int64
        package var id: PackedNotificationID
    }

    /// Indexed by user number; 0 is unused.
    package private(set) var users: [User]
    private var createdSeqs: [Key: Int64] = [:]
    /// Bit `seq` is set while the notification created at `seq` is unread.
    private var unreadBits: [UInt64]
    package private(set) var explicitIDs: [(Int64, Int64)] = []
    package private(set) var lastSeq: Int64 = 0
    private var idText: [UInt8] = []

    /// A state for a log of `events` events by users numbered up to `usersMax`.
    package init(events: Int64, usersMax: Int64) {
        users = Array(repeating: User(), count: Int(usersMax) + 1)
        unreadBits = Array(repeating: 0, count: Int(events / 64) + 1)
        createdSeqs.reserveCapacity(Int(events))
    }

    /// Makes room for a log grown to `events` events by users numbered up to `usersMax` (a
    /// rebuild catching up with appends made while it read).
    package mutating func reserve(events: Int64, usersMax: Int64) {
        if users.count < Int(usersMax) + 1 {
            users += Array(repeating: User(), count: Int(usersMax) + 1 - users.count)
        }
        let words = Int(events / 64) + 1
        if unreadBits.count < words { unreadBits += Array(repeating: 0, count: words - unreadBits.count) }
    }

    /// Numbers of the users with events, in order.
    package var userNumbers: some Sequence<Int64> {
        users.indices.lazy.filter { !users[$0].entries.isEmpty }.map { Int64($0) }
    }

    package func head(user: Int64) -> (streamSeq: Int64, unread: Int64) {
        guard user < users.count else { return (0, 0) }
        return (users[Int(user)].streamSeq, users[Int(user)].unread)
    }

    package func notification(user: Int64, id: PackedNotificationID) -> NotificationState? {
        guard let created = createdSeqs[Key(userNo: user, id: id)] else { return nil }
        return NotificationState(createdSeq: created, isUnread: isUnread(created))
    }

    package func unreadCount(user: Int64, through: Int64) -> Int64 {
        var count: Int64 = 0
        let state = users[Int(user)]
        for (seq, _) in state.created[state.readAllIndex...] {
            if seq > through { break }
            if isUnread(seq) { count += 1 }
        }
        return count
    }

    /// Created seqs of the user's unread notifications, oldest first.
    package func unreadSeqs(user: Int64) -> [Int64] {
        let state = users[Int(user)]
        return state.created[state.readAllIndex...].lazy.map(\.seq).filter(isUnread)
    }

    @inline(__always)
    package func isUnread(_ seq: Int64) -> Bool {
        unreadBits[Int(seq >> 6)] & 1 << UInt64(seq & 63) != 0
    }

    @inline(__always)
    private mutating func setUnread(_ seq: Int64, _ unread: Bool) {
        let bit: UInt64 = 1 << UInt64(seq & 63)
        if unread { unreadBits[Int(seq >> 6)] |= bit } else { unreadBits[Int(seq >> 6)] &= ~bit }
    }

    package mutating func apply(seq: Int64, record: RecordView) throws {
        guard record.userNo < users.count, Int(seq >> 6) < unreadBits.count else {
            throw StoreError(.internal, "the log is damaged: event \(seq) names user number \(record.userNo)")
        }
        let id = record.type == .readAll ? PackedNotificationID() : PackedNotificationID(record.notificationID)
        let effect = try ProjectionReducer.effect(
            ProjectionReducer.Input(
                seq: seq, userNo: record.userNo, type: record.type, notification: id, upToSeq: record.upToSeq,
                unreadBefore: head(user: record.userNo).unread),
            view: self)
        let user = Int(record.userNo)
        users[user].entries.append(StreamEntry(streamSeq: record.streamSeq, seq: seq, unreadAfter: effect.unreadAfter))
        users[user].streamSeq = record.streamSeq
        users[user].unread = effect.unreadAfter
        switch record.type {
        case .created:
            createdSeqs[Key(userNo: record.userNo, id: id)] = seq
            users[user].created.append((seq, id))
            setUnread(seq, true)
        case .read:
            if effect.target > 0 { setUnread(effect.target, false) }
        case .readAll:
            var index = users[user].readAllIndex
            while index < users[user].created.count, users[user].created[index].seq <= effect.target {
                setUnread(users[user].created[index].seq, false)
                index += 1
            }
            users[user].readAllIndex = index
        }
        if !record.explicitID.isEmpty {
            idText.removeAll(keepingCapacity: true)
            RecordView.appendIdentifierText(record.explicitID, to: &idText)
            explicitIDs.append((EventIDHash.of(idText), seq))
        }
        lastSeq = seq
    }
}

/// A notification id in key form (`CompactIdentifier`), held in three big-endian words when it
/// fits in 24 bytes (every UUID and most ids), so hashing and comparing it touch no heap.
/// Ordered as its bytes are, which is the order of the `notifications` table's key.
package struct PackedNotificationID: Hashable, Comparable, Sendable {
    // Package-visible so that the engines' sorts and hash tables inline the comparisons below.
    @usableFromInline package var words: (UInt64, UInt64, UInt64) = (0, 0, 0)
    @usableFromInline package var count: Int = 0
    /// The key form when it is longer than 24 bytes.
    @usableFromInline package var spilled: [UInt8]?

    package static let inlineBytesMax = 24

    package init() {}

    package init(_ key: UnsafeRawBufferPointer) {
        count = key.count
        guard key.count <= Self.inlineBytesMax else {
            spilled = Array(key)
            return
        }
        func word(_ at: Int) -> UInt64 {
            if at + 8 <= key.count { return UInt64(bigEndian: key.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
            // The last, partial word: its bytes at the top, zeros below, as big-endian order reads.
            var value: UInt64 = 0
            for index in 0..<8 { value = value << 8 | UInt64(at + index < key.count ? key[at + index] : 0) }
            return value
        }
        words = (word(0), word(8), word(16))
    }

    package init(_ key: [UInt8]) {
        self = key.withUnsafeBytes { PackedNotificationID($0) }
    }

    /// Calls `body` with the key form's bytes.
    @inlinable
    package func withBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        if let spilled { return try spilled.withUnsafeBytes(body) }
        var bytes: (UInt64, UInt64, UInt64) = (words.0.bigEndian, words.1.bigEndian, words.2.bigEndian)
        return try withUnsafeBytes(of: &bytes) { try body(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
    }

    @inlinable
    package static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.count == rhs.count && lhs.words == rhs.words && lhs.spilled == rhs.spilled
    }

    @inlinable
    package func hash(into hasher: inout Hasher) {
        hasher.combine(words.0)
        hasher.combine(words.1)
        hasher.combine(words.2)
        hasher.combine(count)
        if let spilled { hasher.combine(spilled) }
    }

    @inlinable
    package static func < (lhs: Self, rhs: Self) -> Bool {
        if lhs.spilled == nil && rhs.spilled == nil {
            return (lhs.words.0, lhs.words.1, lhs.words.2, lhs.count) < (
                rhs.words.0, rhs.words.1, rhs.words.2, rhs.count
            )
        }
        return lhs.withBytes { left in rhs.withBytes { right in left.lexicographicallyPrecedes(right) } }
    }
}
