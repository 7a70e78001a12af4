/// Compares a live projection with one rebuilt from the log (`RebuildState`), user by user:
/// stream head, counts, every notification's state and the stream index. Each engine says how to read its
/// live state; the comparison and its report are the same for all.
package enum ProjectionComparison {
    /// What the live projection holds for one user.
    package struct LiveUser {
        package var head: (streamSeq: Int64, counts: InboxCounts)
        /// Every notification of the user, oldest first.
        package var states: [NotificationState]
        package var entries: [StreamEntry]

        package init(head: (streamSeq: Int64, counts: InboxCounts), states: [NotificationState], entries: [StreamEntry])
        {
            self.head = head
            self.states = states
            self.entries = entries
        }
    }

    package static let mismatchesMax = 100

    package static func compare(
        _ state: RebuildState, live: (Int64) throws -> LiveUser, userName: (Int64) throws -> String
    ) throws -> ProjectionVerification {
        var mismatches: [ProjectionMismatch] = []
        func report(_ userNo: Int64, _ field: String, _ live: String, _ rebuilt: String) throws {
            guard mismatches.count < mismatchesMax else { return }
            mismatches.append(
                ProjectionMismatch(userID: try userName(userNo), field: field, live: live, rebuilt: rebuilt))
        }
        var usersChecked = 0
        for userNo in state.userNumbers {
            usersChecked += 1
            let rebuilt = state.users[Int(userNo)]
            let rebuiltHead = state.head(user: userNo)
            let current = try live(userNo)
            if current.head.streamSeq != rebuiltHead.streamSeq {
                try report(userNo, "stream_head", "\(current.head.streamSeq)", "\(rebuiltHead.streamSeq)")
            }
            for (field, live, rebuilt) in [
                ("unread_count", current.head.counts.unread, rebuiltHead.counts.unread),
                ("unseen_count", current.head.counts.unseen, rebuiltHead.counts.unseen),
                ("archived_count", current.head.counts.archived, rebuiltHead.counts.archived),
            ] where live != rebuilt {
                try report(userNo, field, "\(live)", "\(rebuilt)")
            }
            let rebuiltStates = state.states(user: userNo)
            if current.states != rebuiltStates {
                let unread = { (states: [NotificationState]) in states.filter(\.isUnread).map(\.createdSeq) }
                if unread(current.states) != unread(rebuiltStates) {
                    try report(userNo, "unread", describe(unread(current.states)), describe(unread(rebuiltStates)))
                } else {
                    let common = min(current.states.count, rebuiltStates.count)
                    let index = (0..<common).first { current.states[$0] != rebuiltStates[$0] } ?? common
                    let at =
                        index < common ? ", differing at the one created at seq \(rebuiltStates[index].createdSeq)" : ""
                    try report(
                        userNo, "states", "\(current.states.count) notifications\(at)",
                        "\(rebuiltStates.count) notifications")
                }
            }
            if current.entries != rebuilt.entries {
                let common = min(current.entries.count, rebuilt.entries.count)
                let index = (0..<common).first { current.entries[$0] != rebuilt.entries[$0] } ?? common
                try report(
                    userNo, "events", "\(current.entries.count) events, differing from stream_seq \(index + 1)",
                    "\(rebuilt.entries.count) events")
            }
        }
        return ProjectionVerification(ok: mismatches.isEmpty, usersChecked: usersChecked, mismatches: mismatches)
    }

    private static func describe(_ seqs: [Int64]) -> String {
        let shown = seqs.prefix(10).map(String.init).joined(separator: ",")
        return "\(seqs.count) unread (created seqs \(shown)\(seqs.count > 10 ? ",..." : ""))"
    }
}
