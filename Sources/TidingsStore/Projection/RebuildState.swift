/// The whole projection computed in memory from the log, for a rebuild or a verify. It applies
/// the same rules (`ProjectionReducer`) as the live projection, to different storage, shaped for
/// a million events a second: users in an array indexed by user number, each notification's
/// flags in a byte array indexed by seq, notification ids packed into integers, no allocation
/// per event.
package struct RebuildState: ProjectionState, Sendable {
    package struct User: Sendable {
        package var streamSeq: Int64 = 0
        package var counts = InboxCounts.zero
        package var entries: [StreamEntry] = []
        /// The user's notifications in created order.
        package var created: [(seq: Int64, id: PackedNotificationID)] = []
        /// For each flag a bulk event changes (unread, unseen, archived): every notification in
        /// `created` before this index has the flag as the bulk event left it, except those in
        /// `reopened`. Bulk events start their walk here instead of at the user's first
        /// notification.
        package var settledIndex: (Int, Int, Int) = (0, 0, 0)
        /// Created seqs before the settled index that an event changed back (unread, unarchived).
        package var reopened: ([Int64], [Int64], [Int64]) = ([], [], [])
    }

    private struct Key: Hashable, Sendable {
        package var userNo: Int64
        package var id: PackedNotificationID
    }

    /// Indexed by user number; 0 is unused.
    package private(set) var users: [User]
    private var createdSeqs: [Key: Int64] = [:]
    /// The flags of the notification created at each seq (0 for other events).
    private var flags: [UInt8]
    /// When each snoozed notification's snooze ends, by created seq.
    private var snoozedUntil: [Int64: Int64] = [:]
    package private(set) var explicitIDs: [(Int64, Int64)] = []
    package private(set) var lastSeq: Int64 = 0
    private var idText: [UInt8] = []

    /// Answers a bulk event's kind filter: the engine reads the notification's created event.
    package typealias KindTest = (_ kind: [UInt8], _ user: Int64, _ createdSeq: Int64) throws -> Bool

    /// With `tracksKinds`: the kind of each notification, as a number into `kindNames` (0:
    /// none), by created seq.
    private var kindNumbers: [UInt32] = []
    private var kindNames: [[UInt8]] = [[]]
    private var kindIndex: [[UInt8]: UInt32] = [:]
    private let tracksKinds: Bool

    /// A state for a log of `events` events by users numbered up to `usersMax`. With
    /// `tracksKinds` it keeps each notification's kind, for engines that store it and for
    /// bulk events' kind filters without a `KindTest`.
    package init(events: Int64, usersMax: Int64, tracksKinds: Bool = false) {
        users = Array(repeating: User(), count: Int(usersMax) + 1)
        flags = Array(repeating: 0, count: Int(events) + 1)
        createdSeqs.reserveCapacity(Int(events))
        self.tracksKinds = tracksKinds
        if tracksKinds { kindNumbers = Array(repeating: 0, count: Int(events) + 1) }
    }

    /// The kind of the notification created at `createdSeq` (with `tracksKinds`).
    package func kind(createdSeq: Int64) -> [UInt8]? {
        guard tracksKinds, Int(createdSeq) < kindNumbers.count, kindNumbers[Int(createdSeq)] != 0 else { return nil }
        return kindNames[Int(kindNumbers[Int(createdSeq)])]
    }

    /// Makes room for a log grown to `events` events by users numbered up to `usersMax` (a
    /// rebuild catching up with appends made while it read).
    package mutating func reserve(events: Int64, usersMax: Int64) {
        if users.count < Int(usersMax) + 1 {
            users += Array(repeating: User(), count: Int(usersMax) + 1 - users.count)
        }
        if flags.count < Int(events) + 1 { flags += Array(repeating: 0, count: Int(events) + 1 - flags.count) }
        if tracksKinds && kindNumbers.count < Int(events) + 1 {
            kindNumbers += Array(repeating: 0, count: Int(events) + 1 - kindNumbers.count)
        }
    }

    /// Numbers of the users with events, in order.
    package var userNumbers: some Sequence<Int64> {
        users.indices.lazy.filter { !users[$0].entries.isEmpty }.map { Int64($0) }
    }

    package func head(user: Int64) -> (streamSeq: Int64, counts: InboxCounts) {
        guard user < users.count else { return (0, .zero) }
        return (users[Int(user)].streamSeq, users[Int(user)].counts)
    }

    @inline(__always)
    package func state(_ createdSeq: Int64) -> NotificationState {
        let flags = flags[Int(createdSeq)]
        return NotificationState(
            createdSeq: createdSeq, flags: flags,
            snoozedUntil: flags & NotificationState.snoozedFlag != 0 ? snoozedUntil[createdSeq] ?? 0 : 0)
    }

    package func notification(user: Int64, id: PackedNotificationID) -> NotificationState? {
        guard let created = createdSeqs[Key(userNo: user, id: id)] else { return nil }
        return state(created)
    }

    /// Which of the settled indexes a selection can start at: the flag it requires in the state
    /// that no bulk event leaves.
    private static func settledFlag(mask: UInt8, value: UInt8) -> Int? {
        if mask & NotificationState.unreadFlag != 0 && value & NotificationState.unreadFlag != 0 { return 0 }
        if mask & NotificationState.unseenFlag != 0 && value & NotificationState.unseenFlag != 0 { return 1 }
        if mask & NotificationState.archivedFlag != 0 && value & NotificationState.archivedFlag == 0 { return 2 }
        return nil
    }

    package func notifications(user: Int64, through: Int64, mask: UInt8, value: UInt8) -> [NotificationState] {
        let state = users[Int(user)]
        var out: [NotificationState] = []
        var start = 0
        if let flag = Self.settledFlag(mask: mask, value: value) {
            start = Self.index(state.settledIndex, flag)
            for seq in Self.list(state.reopened, flag).sorted() where seq <= through {
                if flags[Int(seq)] & mask == value { out.append(self.state(seq)) }
            }
        }
        for (seq, _) in state.created[start...] {
            if seq > through { break }
            if flags[Int(seq)] & mask == value { out.append(self.state(seq)) }
        }
        return out
    }

    /// Without `tracksKinds` the state cannot tell kinds: `apply` evaluates events through
    /// `WithKinds` and the engine's test.
    package func notificationHasKind(_ kind: [UInt8], user: Int64, createdSeq: Int64) throws -> Bool {
        guard tracksKinds else { throw StoreError(.internal, "a kind filter needs the log's created events") }
        return self.kind(createdSeq: createdSeq) == kind
    }

    /// The state with the engine's kind test beside it, for the reducer.
    private struct WithKinds: ProjectionState {
        let state: RebuildState
        let kinds: KindTest

        func head(user: Int64) -> (streamSeq: Int64, counts: InboxCounts) { state.head(user: user) }
        func notification(user: Int64, id: PackedNotificationID) -> NotificationState? {
            state.notification(user: user, id: id)
        }
        func notifications(user: Int64, through: Int64, mask: UInt8, value: UInt8) -> [NotificationState] {
            state.notifications(user: user, through: through, mask: mask, value: value)
        }
        func notificationHasKind(_ kind: [UInt8], user: Int64, createdSeq: Int64) throws -> Bool {
            try kinds(kind, user, createdSeq)
        }
    }

    /// Every notification of the user with its state, oldest first.
    package func states(user: Int64) -> [NotificationState] {
        users[Int(user)].created.map { state($0.seq) }
    }

    @inline(__always)
    private static func index(_ indexes: (Int, Int, Int), _ flag: Int) -> Int {
        flag == 0 ? indexes.0 : flag == 1 ? indexes.1 : indexes.2
    }

    @inline(__always)
    private static func list(_ lists: ([Int64], [Int64], [Int64]), _ flag: Int) -> [Int64] {
        flag == 0 ? lists.0 : flag == 1 ? lists.1 : lists.2
    }

    private static let bulkFlags: [UInt8] = [
        NotificationState.unreadFlag, NotificationState.unseenFlag, NotificationState.archivedFlag,
    ]

    /// Applies the next event of the log. `kinds` is asked only for a bulk event with a kind,
    /// and must be given unless the state tracks kinds.
    package mutating func apply(seq: Int64, record: RecordView, kinds: KindTest? = nil) throws {
        guard record.userNo < users.count, Int(seq) < flags.count else {
            throw StoreError(.internal, "the log is damaged: event \(seq) names user number \(record.userNo)")
        }
        let id = record.type.namesNotification ? PackedNotificationID(record.notificationID) : PackedNotificationID()
        let options: EventOptions
        do {
            options = try EventOptions(record: record)
        } catch {
            throw StoreError(.internal, "the log is damaged: data of event \(seq) does not decode (\(error))")
        }
        let input = ProjectionReducer.Input(
            seq: seq, userNo: record.userNo, type: record.type, notification: id, upToSeq: record.upToSeq,
            options: options, countsBefore: head(user: record.userNo).counts)
        let effect: (countsAfter: InboxCounts, changes: [NotificationState])
        if options.kind == nil || kinds == nil {
            effect = try ProjectionReducer.effect(input, view: self)
        } else {
            effect = try withoutActuallyEscaping(kinds!) {
                try ProjectionReducer.effect(input, view: WithKinds(state: self, kinds: $0))
            }
        }
        let user = Int(record.userNo)
        users[user].entries.append(StreamEntry(streamSeq: record.streamSeq, seq: seq, countsAfter: effect.countsAfter))
        users[user].streamSeq = record.streamSeq
        users[user].counts = effect.countsAfter
        if record.type == .created {
            createdSeqs[Key(userNo: record.userNo, id: id)] = seq
            users[user].created.append((seq, id))
            if tracksKinds { try trackKind(seq: seq, record: record) }
        }
        for change in effect.changes { setState(change, user: user) }
        if record.type.isBulk && options.kind == nil && !options.onlyRead {
            settle(
                user: user, flag: record.type == .readAll ? 0 : record.type == .seenAll ? 1 : 2,
                through: ProjectionReducer.bulkBound(seq: seq, upToSeq: record.upToSeq))
        }
        if !record.explicitID.isEmpty {
            idText.removeAll(keepingCapacity: true)
            RecordView.appendIdentifierText(record.explicitID, to: &idText)
            explicitIDs.append((EventIDHash.of(idText), seq))
        }
        lastSeq = seq
    }

    private mutating func trackKind(seq: Int64, record: RecordView) throws {
        var notification: [UInt8] = []
        RecordView.appendIdentifierText(record.notificationID, to: &notification)
        var data: [UInt8] = []
        do {
            try DataTransform.decode(record.transformedData, notificationID: notification, into: &data)
        } catch {
            throw StoreError(.internal, "the log is damaged: data of event \(seq) does not decode (\(error))")
        }
        guard let kind = NotificationKind.of(data: data) else { return }
        if let number = kindIndex[kind] {
            kindNumbers[Int(seq)] = number
        } else {
            let number = UInt32(kindNames.count)
            kindNames.append(kind)
            kindIndex[kind] = number
            kindNumbers[Int(seq)] = number
        }
    }

    private mutating func setState(_ next: NotificationState, user: Int) {
        let seq = next.createdSeq
        let before = flags[Int(seq)]
        flags[Int(seq)] = next.flags
        if next.isSnoozed {
            snoozedUntil[seq] = next.snoozedUntil
        } else if before & NotificationState.snoozedFlag != 0 {
            snoozedUntil[seq] = nil
        }
        // A flag changed back from its bulk state, before the settled index, is remembered.
        for flag in 0..<3 {
            let bit = Self.bulkFlags[flag]
            guard before & bit != next.flags & bit else { continue }
            let settled = Self.index(users[user].settledIndex, flag)
            guard settled > 0, seq <= users[user].created[settled - 1].seq else { continue }
            let bulkState: UInt8 = flag == 2 ? bit : 0
            if next.flags & bit != bulkState {
                Self.withList(&users[user].reopened, flag) { $0.append(seq) }
            } else {
                Self.withList(&users[user].reopened, flag) { list in list.removeAll { $0 == seq } }
            }
        }
    }

    /// A bulk event without filters left every notification up to `through` in its state.
    private mutating func settle(user: Int, flag: Int, through: Int64) {
        var index = Self.index(users[user].settledIndex, flag)
        let created = users[user].created
        while index < created.count, created[index].seq <= through { index += 1 }
        switch flag {
        case 0: users[user].settledIndex.0 = index
        case 1: users[user].settledIndex.1 = index
        default: users[user].settledIndex.2 = index
        }
        Self.withList(&users[user].reopened, flag) { list in list.removeAll { $0 <= through } }
    }

    private static func withList(
        _ lists: inout ([Int64], [Int64], [Int64]), _ flag: Int, _ body: (inout [Int64]) -> Void
    ) {
        switch flag {
        case 0: body(&lists.0)
        case 1: body(&lists.1)
        default: body(&lists.2)
        }
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
