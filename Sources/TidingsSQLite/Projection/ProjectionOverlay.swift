import TidingsStore

/// A user's notification, as the projection tables key it: the user's number and the
/// notification id in `CompactIdentifier` form.
struct NotificationKey: Hashable, Sendable {
    var userNo: Int64
    var id: [UInt8]

    /// The bytes in one call: `[UInt8]`'s own hashing feeds the hasher a byte at a time.
    func hash(into hasher: inout Hasher) {
        hasher.combine(userNo)
        id.withUnsafeBytes { hasher.combine(bytes: $0) }
    }
}

/// What the projection keeps of one event while it sits in the overlay.
struct OverlayEvent: Sendable {
    var seq: Int64
    var userNo: Int64
    var streamSeq: Int64
    var type: EventType
    /// The user's unread count just after this event.
    var unreadAfter: Int64
    /// Created and read: the notification (key form).
    var notification: [UInt8]
    /// Read: the seq of the notification's created event. Read_all: notifications created at
    /// or before this seq are marked read. Zero for created.
    var target: Int64
    /// The client's id, when it gave one (hashed into `event_ids` at checkpoint).
    var explicitID: [UInt8]?
}

/// The projection's in-memory delta: every event after the base tables' checkpoint, in seq
/// order, indexed by user, notification and explicit id.
///
/// Readers see the overlay through a window `(lower, upper]`: `lower` is the checkpoint their
/// SQLite snapshot's base tables reflect, `upper` the head of that snapshot. Entries are only
/// ever appended (or, for an uncommitted group, truncated), so a window is a consistent view
/// while the writer goes on appending. After a checkpoint the previous generation is kept one
/// more round, for readers whose snapshot still shows the older base.
struct ProjectionOverlay: Sendable {
    struct NotificationMark: Sendable {
        var createdSeq: Int64?
        var readSeq: Int64?
    }

    /// Events with seq > `retainedFrom` are held; `events[0]` has seq `retainedFrom + 1`.
    private(set) var retainedFrom: Int64
    /// The checkpoint the base tables reflect (as far as this process knows).
    private(set) var baseSeq: Int64
    /// Events up to here are committed; later ones belong to the writer's open transaction.
    private(set) var committedSeq: Int64
    private(set) var events: [OverlayEvent] = []
    private var byUser: [Int64: [Int32]] = [:]
    private var readAllsByUser: [Int64: [Int32]] = [:]
    private var marks: [NotificationKey: NotificationMark] = [:]
    private var explicitIDs: [[UInt8]: Int64] = [:]

    init(baseSeq: Int64) {
        retainedFrom = baseSeq
        self.baseSeq = baseSeq
        committedSeq = baseSeq
    }

    /// The seq of the newest event held, committed or not.
    var topSeq: Int64 { retainedFrom + Int64(events.count) }
    /// Events after the base checkpoint (what the next checkpoint writes).
    var eventsSinceBase: Int64 { committedSeq - baseSeq }

    func event(seq: Int64) -> OverlayEvent? {
        guard seq > retainedFrom, seq <= topSeq else { return nil }
        return events[Int(seq - retainedFrom - 1)]
    }

    // MARK: Writing

    mutating func append(_ event: OverlayEvent) {
        precondition(event.seq == topSeq + 1, "overlay events arrive in seq order without gaps")
        let index = Int32(events.count)
        events.append(event)
        byUser[event.userNo, default: []].append(index)
        switch event.type {
        case .created:
            marks[NotificationKey(userNo: event.userNo, id: event.notification), default: NotificationMark()]
                .createdSeq = event.seq
        case .read:
            // A read that changed nothing (target 0) leaves no mark.
            if event.target > 0 {
                marks[NotificationKey(userNo: event.userNo, id: event.notification), default: NotificationMark()]
                    .readSeq = event.seq
            }
        case .readAll:
            readAllsByUser[event.userNo, default: []].append(index)
        }
        if let id = event.explicitID { explicitIDs[id] = event.seq }
    }

    /// Marks everything appended so far as committed.
    mutating func commit() {
        committedSeq = topSeq
    }

    /// Drops uncommitted events after `seq` (a failed request or transaction).
    mutating func truncate(after seq: Int64) {
        precondition(seq >= committedSeq, "committed events are never dropped")
        while topSeq > seq {
            let event = events.removeLast()
            let index = Int32(events.count)
            byUser[event.userNo]?.removeLast()
            if byUser[event.userNo]?.isEmpty == true { byUser[event.userNo] = nil }
            switch event.type {
            case .created, .read:
                let key = NotificationKey(userNo: event.userNo, id: event.notification)
                if event.type == .created {
                    marks[key]?.createdSeq = nil
                } else if event.target > 0 {
                    marks[key]?.readSeq = nil
                }
                if let mark = marks[key], mark.createdSeq == nil, mark.readSeq == nil { marks[key] = nil }
            case .readAll:
                if readAllsByUser[event.userNo]?.last == index { readAllsByUser[event.userNo]?.removeLast() }
                if readAllsByUser[event.userNo]?.isEmpty == true { readAllsByUser[event.userNo] = nil }
            }
            if let id = event.explicitID, explicitIDs[id] == event.seq { explicitIDs[id] = nil }
        }
    }

    /// The base tables now reflect every event up to `newBase`. Keeps the previous generation
    /// (events after the old base) for readers whose snapshot still shows the old base tables.
    mutating func rebase(to newBase: Int64) {
        precondition(newBase >= baseSeq && newBase <= committedSeq, "a checkpoint moves forward within the log")
        let keepFrom = baseSeq
        baseSeq = newBase
        guard keepFrom > retainedFrom else { return }
        let kept = Array(events[Int(keepFrom - retainedFrom)...])
        retainedFrom = keepFrom
        rebuildIndexes(from: kept)
    }

    /// Forgets everything: the base tables were replaced (rebuild) at `baseSeq`.
    mutating func reset(baseSeq: Int64) {
        precondition(committedSeq == topSeq, "no transaction may be open across a reset")
        self = ProjectionOverlay(baseSeq: baseSeq)
    }

    private mutating func rebuildIndexes(from kept: [OverlayEvent]) {
        events = []
        byUser = [:]
        readAllsByUser = [:]
        marks = [:]
        explicitIDs = [:]
        let committed = committedSeq
        events.reserveCapacity(kept.count)
        for event in kept { append(event) }
        committedSeq = committed
    }

    // MARK: Reading within a window (lower, upper]

    /// The user's newest event in the window.
    func lastEvent(user: Int64, lower: Int64, upper: Int64) -> OverlayEvent? {
        guard let indexes = byUser[user] else { return nil }
        for index in indexes.reversed() {
            let event = events[Int(index)]
            if event.seq <= lower { return nil }
            if event.seq <= upper { return event }
        }
        return nil
    }

    /// The user's events in the window with stream_seq after `afterStreamSeq`, oldest first.
    func userEvents(user: Int64, afterStreamSeq: Int64, limit: Int, lower: Int64, upper: Int64) -> [OverlayEvent] {
        guard let indexes = byUser[user], limit > 0 else { return [] }
        // Binary search for the first event with stream_seq > afterStreamSeq: stream_seq grows
        // with the index within one user's list.
        var low = 0
        var high = indexes.count
        while low < high {
            let middle = (low + high) / 2
            if events[Int(indexes[middle])].streamSeq <= afterStreamSeq { low = middle + 1 } else { high = middle }
        }
        var out: [OverlayEvent] = []
        for index in indexes[low...] {
            let event = events[Int(index)]
            if event.seq <= lower { continue }
            if event.seq > upper || out.count >= limit { break }
            out.append(event)
        }
        return out
    }

    /// The notification's created and read seqs within the window.
    func mark(_ key: NotificationKey, lower: Int64, upper: Int64) -> NotificationMark? {
        guard var mark = marks[key] else { return nil }
        if let seq = mark.createdSeq, seq <= lower || seq > upper { mark.createdSeq = nil }
        if let seq = mark.readSeq, seq <= lower || seq > upper { mark.readSeq = nil }
        return mark.createdSeq == nil && mark.readSeq == nil ? nil : mark
    }

    /// The highest created_seq bound of the user's read_all events in the window (0 if none).
    func readAllBound(user: Int64, lower: Int64, upper: Int64) -> Int64 {
        guard let indexes = readAllsByUser[user] else { return 0 }
        var bound: Int64 = 0
        for index in indexes {
            let event = events[Int(index)]
            if event.seq > lower && event.seq <= upper { bound = max(bound, event.target) }
        }
        return bound
    }

    /// The user's explicit reads in the window, as (read seq, created seq of the target).
    func explicitReads(user: Int64, lower: Int64, upper: Int64) -> [(readSeq: Int64, createdSeq: Int64)] {
        guard let indexes = byUser[user] else { return [] }
        var out: [(Int64, Int64)] = []
        for index in indexes {
            let event = events[Int(index)]
            if event.type == .read && event.target > 0 && event.seq > lower && event.seq <= upper {
                out.append((event.seq, event.target))
            }
        }
        return out
    }

    /// The user's created events in the window, oldest first.
    func createdEvents(user: Int64, lower: Int64, upper: Int64) -> [OverlayEvent] {
        guard let indexes = byUser[user] else { return [] }
        var out: [OverlayEvent] = []
        for index in indexes {
            let event = events[Int(index)]
            if event.type == .created && event.seq > lower && event.seq <= upper { out.append(event) }
        }
        return out
    }

    func seq(forExplicitID id: [UInt8], lower: Int64, upper: Int64) -> Int64? {
        guard let seq = explicitIDs[id], seq > lower, seq <= upper else { return nil }
        return seq
    }

    /// Events in (from, to], for a checkpoint or a verify.
    func events(after from: Int64, through to: Int64) -> ArraySlice<OverlayEvent> {
        precondition(from >= retainedFrom && to <= topSeq && from <= to, "window outside the overlay")
        return events[Int(from - retainedFrom)..<Int(to - retainedFrom)]
    }
}
