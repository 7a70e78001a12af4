import TidingsStore

/// The projection as of one point of the log: the base tables as of `lower` (read through the
/// caller's connection and snapshot) plus the overlay's events in `(lower, upper]`.
///
/// The writer uses it with `upper` at the end of its open transaction; readers with the head of
/// their SQLite snapshot. All merging of base and overlay lives here, so the rules of the
/// projection are written once.
struct ProjectionView: ProjectionState {
    let base: ProjectionBase
    let overlay: OverlayLock
    let lower: Int64
    let upper: Int64
    /// The compact `data` of the event at a seq, for a bulk event's kind filter: the writer and
    /// the catch-ups give one; reads never evaluate events.
    var eventData: ((Int64) throws -> [UInt8])?

    /// The user's stream head and counts.
    func head(user: Int64) throws -> (streamSeq: Int64, counts: InboxCounts) {
        if let event = overlay.withLock({ $0.lastEvent(user: user, lower: lower, upper: upper) }) {
            return (event.streamSeq, event.countsAfter)
        }
        guard let entry = try base.lastEntry(user: user) else { return (0, .zero) }
        return (entry.streamSeq, entry.countsAfter)
    }

    /// Entries of the user stream after `afterStreamSeq`, oldest first.
    func entries(user: Int64, afterStreamSeq: Int64, limit: Int) throws -> [StreamEntry] {
        var out = try base.entries(user: user, afterStreamSeq: afterStreamSeq, limit: limit)
        let after = out.last?.streamSeq ?? afterStreamSeq
        if out.count < limit {
            let recent = overlay.withLock {
                $0.userEvents(user: user, afterStreamSeq: after, limit: limit - out.count, lower: lower, upper: upper)
            }
            out += recent.map { StreamEntry(streamSeq: $0.streamSeq, seq: $0.seq, countsAfter: $0.countsAfter) }
        }
        return out
    }

    func notification(user: Int64, id: [UInt8]) throws -> NotificationState? {
        try notification(NotificationKey(userNo: user, id: id))
    }

    /// The notification's state, or nil when the user never had it.
    func notification(_ key: NotificationKey) throws -> NotificationState? {
        let createdSeq: Int64
        if let seq = overlay.withLock({ $0.createdSeq(key, lower: lower, upper: upper) }) {
            createdSeq = seq
        } else if let seq = try base.createdSeq(key) {
            createdSeq = seq
        } else {
            return nil
        }
        return try state(user: key.userNo, createdSeq: createdSeq)
    }

    /// The state of a notification the user has.
    func state(user: Int64, createdSeq: Int64) throws -> NotificationState {
        let key = StateKey(userNo: user, createdSeq: createdSeq)
        if let state = overlay.withLock({ $0.state(key, lower: lower, upper: upper) }) { return state }
        return try base.state(user: user, createdSeq: createdSeq) ?? NotificationState(createdSeq: createdSeq, flags: 0)
    }

    func notifications(user: Int64, through: Int64, mask: UInt8, value: UInt8) throws -> [NotificationState] {
        try stateTest(user: user).select(mask: mask, value: value, through: through)
    }

    func notificationHasKind(_ kind: [UInt8], user: Int64, createdSeq: Int64) throws -> Bool {
        guard let eventData else { throw StoreError(.internal, "this view of the projection cannot read kinds") }
        return try NotificationKind.matches(kind, data: eventData(createdSeq))
    }

    /// The user's notification states as of this view, with the overlay's part taken once:
    /// every read of several states merges the base table and the overlay here.
    func stateTest(user: Int64) -> StateTest {
        StateTest(
            base: base, user: user, lower: lower,
            changed: overlay.withLock { $0.changedStates(user: user, lower: lower, upper: upper) })
    }

    struct StateTest {
        let base: ProjectionBase
        let user: Int64
        /// Base rows were all created at or before it; later notifications are the overlay's.
        let lower: Int64
        /// The notifications the overlay's events changed (or created), as they left them.
        let changed: [Int64: NotificationState]

        /// The state of a notification the user has.
        func state(createdSeq: Int64) throws -> NotificationState {
            if let state = changed[createdSeq] { return state }
            guard createdSeq <= lower else { return NotificationState(createdSeq: createdSeq, flags: 0) }
            return try base.state(user: user, createdSeq: createdSeq)
                ?? NotificationState(createdSeq: createdSeq, flags: 0)
        }

        /// The overlay's notifications in `(after, through]` whose `flags & mask == value`, oldest first.
        private func changedMatching(mask: UInt8, value: UInt8, after: Int64, through: Int64) -> [NotificationState] {
            changed.values.filter { $0.createdSeq > after && $0.createdSeq <= through && $0.flags & mask == value }
                .sorted { $0.createdSeq < $1.createdSeq }
        }

        /// Notifications created at or before `through` whose `flags & mask == value`, oldest
        /// first, at most `limit`.
        func select(mask: UInt8, value: UInt8, through: Int64, limit: Int = .max) throws -> [NotificationState] {
            let fromOverlay = changedMatching(mask: mask, value: value, after: 0, through: through)
            var fromBase: [NotificationState] = []
            let baseThrough = min(through, lower)
            if value & mask == 0 {
                // Notifications without a row match too: read from the notifications table.
                fromBase = try base.allStates(user: user, through: baseThrough).filter {
                    $0.flags & mask == value && changed[$0.createdSeq] == nil
                }
            } else {
                var after: Int64 = 0
                while fromBase.count < limit {
                    let page = try base.states(
                        user: user, after: after, through: baseThrough, mask: mask, value: value, limit: 512)
                    fromBase += page.lazy.filter { changed[$0.createdSeq] == nil }
                    guard page.count == 512, let last = page.last else { break }
                    after = last.createdSeq
                }
            }
            return Array(Self.merge(fromBase, fromOverlay, newestFirst: false).prefix(limit))
        }

        /// Notifications created before `before` whose `flags & mask == value` (a flag that has
        /// rows), newest first, at most `limit`.
        func select(mask: UInt8, value: UInt8, before: Int64, limit: Int) throws -> [NotificationState] {
            precondition(value & mask != 0, "a newest-first selection reads the states table")
            let fromOverlay = Array(
                changedMatching(mask: mask, value: value, after: 0, through: before - 1).reversed().prefix(limit))
            var fromBase: [NotificationState] = []
            var below = min(before, lower + 1)
            while fromBase.count < limit {
                let page = try base.states(
                    user: user, after: 0, through: below - 1, mask: mask, value: value, newestFirst: true, limit: 512)
                fromBase += page.lazy.filter { changed[$0.createdSeq] == nil }
                guard page.count == 512, let last = page.last else { break }
                below = last.createdSeq
            }
            return Array(Self.merge(fromBase, fromOverlay, newestFirst: true).prefix(limit))
        }

        private static func merge(
            _ left: [NotificationState], _ right: [NotificationState], newestFirst: Bool
        ) -> [NotificationState] {
            guard !right.isEmpty else { return left }
            guard !left.isEmpty else { return right }
            return (left + right).sorted { newestFirst ? $0.createdSeq > $1.createdSeq : $0.createdSeq < $1.createdSeq }
        }
    }

    /// Snoozes in force as of this view that end at or before `dueBy`: every one the overlay's
    /// events made, and the base table's soonest first until there are `limit`. Base rows the
    /// overlay has changed since (a snooze ended, moved) are passed over, however many.
    func snoozesEnding(by dueBy: Int64, limit: Int) throws -> [NotificationState] {
        var looked: Set<StateKey> = []
        var out: [NotificationState] = []
        func consider(_ key: StateKey) throws {
            guard looked.insert(key).inserted else { return }
            let state = try state(user: key.userNo, createdSeq: key.createdSeq)
            if state.isSnoozed && state.snoozedUntil <= dueBy { out.append(state) }
        }
        for key in overlay.withLock({ $0.snoozesEnding(by: dueBy, lower: lower, upper: upper) }) { try consider(key) }
        var offset = 0
        while out.count < limit {
            let page = try base.snoozesEnding(by: dueBy, limit: limit, offset: offset)
            for key in page { try consider(key) }
            guard page.count == limit else { break }
            offset += page.count
        }
        return out
    }

    /// The seqs an explicit event id may belong to: the overlay's exact match, else the base
    /// table's hash matches (the caller compares the stored ids).
    func candidateSeqs(forExplicitID id: [UInt8]) throws -> [Int64] {
        if let seq = overlay.withLock({ $0.seq(forExplicitID: id, lower: lower, upper: upper) }) { return [seq] }
        return try base.seqs(forIDHash: EventIDHash.of(id)).filter { $0 <= lower }
    }
}
