import TidingsStore

/// The projection as of one point of the log: the base tables as of `lower` (read through the
/// caller's connection and snapshot) plus the overlay's events in `(lower, upper]`.
///
/// The writer uses it with `upper` at the end of its open transaction; readers with the head of
/// their SQLite snapshot. All merging of base and overlay lives here, so the rules of the
/// unread projection are written once.
struct ProjectionView: ProjectionState {
    let base: ProjectionBase
    let overlay: OverlayLock
    let lower: Int64
    let upper: Int64

    typealias Notification = NotificationState

    /// The user's stream head and unread count.
    func head(user: Int64) throws -> (streamSeq: Int64, unread: Int64) {
        if let event = overlay.withLock({ $0.lastEvent(user: user, lower: lower, upper: upper) }) {
            return (event.streamSeq, event.unreadAfter)
        }
        guard let entry = try base.lastEntry(user: user) else { return (0, 0) }
        return (entry.streamSeq, entry.unreadAfter)
    }

    /// Entries of the user stream after `afterStreamSeq`, oldest first.
    func entries(user: Int64, afterStreamSeq: Int64, limit: Int) throws -> [StreamEntry] {
        var out = try base.entries(user: user, afterStreamSeq: afterStreamSeq, limit: limit)
        let after = out.last?.streamSeq ?? afterStreamSeq
        if out.count < limit {
            let recent = overlay.withLock {
                $0.userEvents(user: user, afterStreamSeq: after, limit: limit - out.count, lower: lower, upper: upper)
            }
            out += recent.map { StreamEntry(streamSeq: $0.streamSeq, seq: $0.seq, unreadAfter: $0.unreadAfter) }
        }
        return out
    }

    func notification(user: Int64, id: [UInt8]) throws -> Notification? {
        try notification(NotificationKey(userNo: user, id: id))
    }

    /// The notification's state, or nil when the user never had it.
    func notification(_ key: NotificationKey) throws -> Notification? {
        let (mark, readAllBound) = overlay.withLock {
            ($0.mark(key, lower: lower, upper: upper), $0.readAllBound(user: key.userNo, lower: lower, upper: upper))
        }
        let createdSeq: Int64
        var unread: Bool
        if let created = mark?.createdSeq {
            createdSeq = created
            unread = true
        } else if let created = try base.createdSeq(key) {
            createdSeq = created
            unread = try base.isUnread(user: key.userNo, createdSeq: created)
        } else {
            return nil
        }
        if mark?.readSeq != nil || createdSeq <= readAllBound { unread = false }
        return Notification(createdSeq: createdSeq, isUnread: unread)
    }

    /// Created seqs of the user's unread notifications created at or before `through`, oldest
    /// first, at most `limit`.
    func unreadSeqs(user: Int64, through: Int64 = .max, limit: Int = .max) throws -> [Int64] {
        try unreadTest(user: user).unreadSeqs(through: through, limit: limit)
    }

    /// How many unread notifications the user has created at or before `through`.
    func unreadCount(user: Int64, through: Int64) throws -> Int64 {
        try unreadTest(user: user).unreadCount(through: through)
    }

    /// The user's unread set as of this view, with the overlay's part of it taken once: every
    /// read of the unread set merges the base table and the overlay here.
    func unreadTest(user: Int64) -> UnreadTest {
        let (readAllBound, explicitReads, created) = overlay.withLock {
            (
                $0.readAllBound(user: user, lower: lower, upper: upper),
                $0.explicitReads(user: user, lower: lower, upper: upper),
                $0.createdEvents(user: user, lower: lower, upper: upper)
            )
        }
        return UnreadTest(
            base: base, user: user, lower: lower, readAllBound: readAllBound,
            readTargets: Set(explicitReads.map(\.createdSeq)), overlayCreated: created.map(\.seq))
    }

    struct UnreadTest {
        let base: ProjectionBase
        let user: Int64
        /// Base rows were all created at or before it; later notifications are the overlay's.
        let lower: Int64
        /// The overlay's read_alls marked everything created at or before it.
        let readAllBound: Int64
        /// Created seqs the overlay's explicit reads marked.
        let readTargets: Set<Int64>
        /// Created seqs of the user's notifications in the overlay, oldest first.
        let overlayCreated: [Int64]

        func isUnread(createdSeq: Int64) throws -> Bool {
            guard createdSeq > readAllBound, !readTargets.contains(createdSeq) else { return false }
            if createdSeq > lower { return true }
            return try base.isUnread(user: user, createdSeq: createdSeq)
        }

        /// Created seqs of unread notifications at or before `through`, oldest first, at most
        /// `limit`.
        func unreadSeqs(through: Int64, limit: Int) throws -> [Int64] {
            var out: [Int64] = []
            var after = readAllBound
            while out.count < limit {
                let page = try base.unreadSeqs(user: user, after: after, through: min(through, lower), limit: 512)
                for seq in page where !readTargets.contains(seq) {
                    out.append(seq)
                    if out.count == limit { break }
                }
                guard page.count == 512, let last = page.last else { break }
                after = last
            }
            for seq in overlayCreated where out.count < limit {
                if seq > through { break }
                if seq > readAllBound && !readTargets.contains(seq) { out.append(seq) }
            }
            return out
        }

        /// Created seqs of unread notifications below `before`, newest first, at most `limit`.
        func unreadSeqs(before: Int64, limit: Int) throws -> [Int64] {
            var out: [Int64] = []
            for seq in overlayCreated.reversed() where seq < before && out.count < limit {
                if seq > readAllBound && !readTargets.contains(seq) { out.append(seq) }
            }
            var below = min(before, lower + 1)
            while out.count < limit {
                let page = try base.unreadSeqs(
                    user: user, after: readAllBound, through: below - 1, newestFirst: true, limit: 512)
                for seq in page where !readTargets.contains(seq) {
                    out.append(seq)
                    if out.count == limit { break }
                }
                guard page.count == 512, let last = page.last else { break }
                below = last
            }
            return out
        }

        /// How many unread notifications were created at or before `through`.
        func unreadCount(through: Int64) throws -> Int64 {
            var count: Int64 = 0
            let baseThrough = min(through, lower)
            if baseThrough > readAllBound {
                count += try base.unreadCount(user: user, after: readAllBound, through: baseThrough)
                count -= Int64(readTargets.filter { $0 > readAllBound && $0 <= baseThrough }.count)
            }
            for seq in overlayCreated where seq <= through && seq > readAllBound {
                if !readTargets.contains(seq) { count += 1 }
            }
            return count
        }
    }

    /// The seqs an explicit event id may belong to: the overlay's exact match, else the base
    /// table's hash matches (the caller compares the stored ids).
    func candidateSeqs(forExplicitID id: [UInt8]) throws -> [Int64] {
        if let seq = overlay.withLock({ $0.seq(forExplicitID: id, lower: lower, upper: upper) }) { return [seq] }
        return try base.seqs(forIDHash: EventIDHash.of(id)).filter { $0 <= lower }
    }
}
