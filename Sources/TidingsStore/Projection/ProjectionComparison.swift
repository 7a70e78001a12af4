/// Compares a live projection with one rebuilt from the log (`RebuildState`), user by user:
/// stream head, unread count, unread list and stream index. Each engine says how to read its
/// live state; the comparison and its report are the same for all.
package enum ProjectionComparison {
    /// What the live projection holds for one user.
    package struct LiveUser {
        package var head: (streamSeq: Int64, unread: Int64)
        package var unreadSeqs: [Int64]
        package var entries: [StreamEntry]

        package init(head: (streamSeq: Int64, unread: Int64), unreadSeqs: [Int64], entries: [StreamEntry]) {
            self.head = head
            self.unreadSeqs = unreadSeqs
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
            if current.head.unread != rebuiltHead.unread {
                try report(userNo, "unread_count", "\(current.head.unread)", "\(rebuiltHead.unread)")
            }
            let rebuiltUnread = state.unreadSeqs(user: userNo)
            if current.unreadSeqs != rebuiltUnread {
                try report(userNo, "unread", describe(current.unreadSeqs), describe(rebuiltUnread))
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
