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

/// A client's event id as a dictionary key, hashed in one call for the same reason.
struct ExplicitIDKey: Hashable, Sendable {
    var bytes: [UInt8]

    func hash(into hasher: inout Hasher) {
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
    }
}

/// A user's notification as the `states` table keys it.
struct StateKey: Hashable, Sendable {
    var userNo: Int64
    var createdSeq: Int64
}

/// What the projection keeps of one event while it sits in the overlay.
struct OverlayEvent: Sendable {
    var seq: Int64
    var userNo: Int64
    var streamSeq: Int64
    var type: EventType
    /// The user's counts just after this event.
    var countsAfter: InboxCounts
    /// Created: the notification (key form); empty for the other types.
    var notification: [UInt8]
    /// The one notification a single-notification event changed (nil when it changed none).
    var change: NotificationState?
    /// What a bulk event changed, in created order.
    var bulkChanges: [NotificationState] = []
    /// The client's id, when it gave one (hashed into `event_ids` at checkpoint).
    var explicitID: [UInt8]?

    init(
        seq: Int64, userNo: Int64, streamSeq: Int64, type: EventType, countsAfter: InboxCounts, notification: [UInt8],
        changes: [NotificationState], explicitID: [UInt8]?
    ) {
        self.seq = seq
        self.userNo = userNo
        self.streamSeq = streamSeq
        self.type = type
        self.countsAfter = countsAfter
        self.notification = notification
        if type.isBulk { bulkChanges = changes } else { change = changes.first }
        self.explicitID = explicitID
    }

    /// Calls `body` with every notification state this event set, without making an array
    /// for the one of a single-notification event (every append passes here).
    @inline(__always)
    func forEachChange(_ body: (NotificationState) -> Void) {
        if let change { body(change) }
        for change in bulkChanges { body(change) }
    }

    /// The state this event gave the notification created at `createdSeq`, if it changed it.
    func state(createdSeq: Int64) -> NotificationState? {
        if let change { return change.createdSeq == createdSeq ? change : nil }
        var low = 0
        var high = bulkChanges.count
        while low < high {
            let middle = (low + high) / 2
            if bulkChanges[middle].createdSeq < createdSeq { low = middle + 1 } else { high = middle }
        }
        return low < bulkChanges.count && bulkChanges[low].createdSeq == createdSeq ? bulkChanges[low] : nil
    }
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
    /// Events with seq > `retainedFrom` are held; `events[0]` has seq `retainedFrom + 1`.
    private(set) var retainedFrom: Int64
    /// The checkpoint the base tables reflect (as far as this process knows).
    private(set) var baseSeq: Int64
    /// Events up to here are committed; later ones belong to the writer's open transaction.
    private(set) var committedSeq: Int64
    private(set) var events: [OverlayEvent] = []
    private var byUser: [Int64: [Int32]] = [:]
    /// Notifications created in the overlay: their created seq by key.
    private var created: [NotificationKey: Int64] = [:]
    /// For each notification an overlay event changed, the indexes of those events in order.
    private var versions: [StateKey: [Int32]] = [:]
    private var explicitIDs: [ExplicitIDKey: Int64] = [:]
    /// The indexes of the events that snoozed a notification, for the snooze sweeper.
    private var snoozes: [Int32] = []

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
        if event.type == .created {
            created[NotificationKey(userNo: event.userNo, id: event.notification)] = event.seq
        }
        event.forEachChange { change in
            versions[StateKey(userNo: event.userNo, createdSeq: change.createdSeq), default: []].append(index)
        }
        if let id = event.explicitID { explicitIDs[ExplicitIDKey(bytes: id)] = event.seq }
        if event.type == .snoozed && event.change != nil { snoozes.append(index) }
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
            byUser[event.userNo]?.removeLast()
            if byUser[event.userNo]?.isEmpty == true { byUser[event.userNo] = nil }
            if event.type == .created {
                let key = NotificationKey(userNo: event.userNo, id: event.notification)
                if created[key] == event.seq { created[key] = nil }
            }
            event.forEachChange { change in
                let key = StateKey(userNo: event.userNo, createdSeq: change.createdSeq)
                versions[key]?.removeLast()
                if versions[key]?.isEmpty == true { versions[key] = nil }
            }
            if let id = event.explicitID, explicitIDs[ExplicitIDKey(bytes: id)] == event.seq {
                explicitIDs[ExplicitIDKey(bytes: id)] = nil
            }
            if snoozes.last == Int32(events.count) { snoozes.removeLast() }
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
        created = [:]
        versions = [:]
        explicitIDs = [:]
        snoozes = []
        let committed = committedSeq
        // Room for the kept generation and a next one as large, so that neither the rebuild
        // nor the appends after it grow the tables step by step.
        events.reserveCapacity(kept.count * 2)
        byUser.reserveCapacity(kept.count)
        created.reserveCapacity(kept.count * 2)
        versions.reserveCapacity(kept.count * 2)
        explicitIDs.reserveCapacity(kept.count * 2)
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

    /// The created seq of a notification created in the window.
    func createdSeq(_ key: NotificationKey, lower: Int64, upper: Int64) -> Int64? {
        guard let seq = created[key], seq > lower, seq <= upper else { return nil }
        return seq
    }

    /// The notification's state as the window's last event that changed it left it.
    func state(_ key: StateKey, lower: Int64, upper: Int64) -> NotificationState? {
        guard let indexes = versions[key] else { return nil }
        for index in indexes.reversed() {
            let event = events[Int(index)]
            if event.seq <= lower { return nil }
            if event.seq <= upper { return event.state(createdSeq: key.createdSeq) }
        }
        return nil
    }

    /// Every notification of the user that the window's events changed, with its state after
    /// the last of them, by created seq.
    func changedStates(user: Int64, lower: Int64, upper: Int64) -> [Int64: NotificationState] {
        guard let indexes = byUser[user] else { return [:] }
        var out: [Int64: NotificationState] = [:]
        for index in indexes {
            let event = events[Int(index)]
            if event.seq <= lower { continue }
            if event.seq > upper { break }
            event.forEachChange { out[$0.createdSeq] = $0 }
        }
        return out
    }

    /// The notifications the window's events snoozed until `dueBy` or earlier (a later event
    /// may have changed them since: the caller reads their state).
    func snoozesEnding(by dueBy: Int64, lower: Int64, upper: Int64) -> [StateKey] {
        snoozes.compactMap { index in
            let event = events[Int(index)]
            guard event.seq > lower, event.seq <= upper, let change = event.change, change.snoozedUntil <= dueBy
            else { return nil }
            return StateKey(userNo: event.userNo, createdSeq: change.createdSeq)
        }
    }

    func seq(forExplicitID id: [UInt8], lower: Int64, upper: Int64) -> Int64? {
        guard let seq = explicitIDs[ExplicitIDKey(bytes: id)], seq > lower, seq <= upper else { return nil }
        return seq
    }

    /// Events in (from, to], for a checkpoint or a verify.
    func events(after from: Int64, through to: Int64) -> ArraySlice<OverlayEvent> {
        precondition(from >= retainedFrom && to <= topSeq && from <= to, "window outside the overlay")
        return events[Int(from - retainedFrom)..<Int(to - retainedFrom)]
    }
}
