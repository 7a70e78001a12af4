/// The log's history as one snapshot of an engine sees it: its head and the check bytes of any
/// earlier seq, for the cursor checks below.
package protocol LogHistory {
    var head: CursorAnchor { get }
    /// The first 4 bytes of the chain hash after `seq` (0 < seq < head.seq).
    func check(at seq: Int64) throws -> UInt32
}

extension LogHistory {
    /// Whether the log, as of this snapshot, holds the history `anchor` was made in.
    package func has(_ anchor: CursorAnchor) throws -> Bool {
        if anchor.seq > head.seq { return false }
        if anchor.seq == head.seq { return anchor.check == head.check }
        if anchor.seq == 0 { return anchor.check == 0 }
        return try check(at: anchor.seq) == anchor.check
    }
}

/// The protocol's checks of cursors, user ids and limits, the same for every engine: each engine
/// reads the head in its own snapshot and hands it here.
extension EventStore {
    /// The stream_seq a user-stream cursor names, checked in the protocol's order: parse, kind
    /// and user, epoch, position, history (`head` is the stream's current head stream_seq, `log`
    /// the snapshot's view of the log).
    package func userPosition(_ text: String?, userID: String, head: Int64, log: some LogHistory) throws -> Int64 {
        guard let text else { return 0 }
        let cursor = try Cursor.parse(text)
        guard case .user(let hash) = cursor.stream else {
            throw StoreError.invalidCursor("cursor belongs to the all stream, not a user stream")
        }
        guard hash == Cursor.userHash(userID) else {
            throw StoreError.invalidCursor("cursor belongs to another user's stream")
        }
        return try checkReset(
            cursor, head: head, log: log, headCursor: userCursor(userID, streamSeq: head, anchor: log.head))
    }

    package func allPosition(_ text: String?, log: some LogHistory) throws -> Int64 {
        guard let text else { return 0 }
        let cursor = try Cursor.parse(text)
        guard case .all = cursor.stream else {
            throw StoreError.invalidCursor("cursor belongs to a user stream, not the all stream")
        }
        return try checkReset(
            cursor, head: log.head.seq, log: log, headCursor: allCursor(seq: log.head.seq, anchor: log.head))
    }

    /// The last cursor checks, shared by both kinds of stream: epoch, position, then whether
    /// the log still has the history the cursor was made in.
    private func checkReset(_ cursor: Cursor, head: Int64, log: some LogHistory, headCursor: String) throws -> Int64 {
        guard cursor.epoch == epoch else {
            throw StoreError(
                .cursorReset, "cursor is from another epoch of the store", head: headCursor, resetReason: .epochMismatch
            )
        }
        guard cursor.position <= head else {
            throw StoreError(
                .cursorReset, "cursor is past the head of the stream", head: headCursor, resetReason: .cursorAhead)
        }
        if let anchor = cursor.anchor, try !log.has(anchor) {
            throw StoreError(
                .cursorReset,
                "cursor is from a history of the log that was lost (commits after seq \(min(anchor.seq, log.head.seq)) or before were replaced)",
                head: headCursor, resetReason: .historyForked)
        }
        return cursor.position
    }

    /// Where a user stream starts for a hello's cursor, given the stream's head as of one
    /// snapshot: a foreign epoch, a cursor past the head or from a lost history is a reset, not
    /// an error.
    package func userStreamStart(
        userID: String, cursor: String?, head: (streamSeq: Int64, counts: InboxCounts), log: some LogHistory
    ) throws -> StreamStart {
        do {
            let position = try userPosition(cursor, userID: userID, head: head.streamSeq, log: log)
            return StreamStart(
                head: head.streamSeq, anchor: log.head, headCounts: head.counts, position: position,
                resetReason: nil)
        } catch let error as StoreError where error.code == .cursorReset {
            return StreamStart(
                head: head.streamSeq, anchor: log.head, headCounts: head.counts, position: nil,
                resetReason: error.resetReason)
        }
    }

    /// The same for the `all` stream.
    package func allStreamStart(cursor: String?, log: some LogHistory) throws -> StreamStart {
        do {
            let position = try allPosition(cursor, log: log)
            return StreamStart(head: log.head.seq, anchor: log.head, position: position, resetReason: nil)
        } catch let error as StoreError where error.code == .cursorReset {
            return StreamStart(head: log.head.seq, anchor: log.head, position: nil, resetReason: error.resetReason)
        }
    }

    package static func checkUser(_ userID: String) throws {
        if let problem = Identifier.problem(userID.utf8) { throw StoreError.badRequest("user_id \(problem)") }
    }

    package static func checkLimit(_ limit: Int) throws {
        guard (1...Limits.pageLimitMax).contains(limit) else {
            throw StoreError.badRequest("limit must be between 1 and \(Limits.pageLimitMax)")
        }
    }
}
