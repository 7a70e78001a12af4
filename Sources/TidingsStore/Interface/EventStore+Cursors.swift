/// The protocol's checks of cursors, user ids and limits, the same for every engine: each engine
/// reads the head in its own snapshot and hands it here.
extension EventStore {
    /// The stream_seq a user-stream cursor names, checked in the protocol's order: parse, kind
    /// and user, epoch, position (`head` is the stream's current head stream_seq).
    package func userPosition(_ text: String?, userID: String, head: Int64) throws -> Int64 {
        guard let text else { return 0 }
        let cursor = try Cursor.parse(text)
        guard case .user(let hash) = cursor.stream else {
            throw StoreError.invalidCursor("cursor belongs to the all stream, not a user stream")
        }
        guard hash == Cursor.userHash(userID) else {
            throw StoreError.invalidCursor("cursor belongs to another user's stream")
        }
        return try checkEpochAndPosition(cursor, head: head, headCursor: userCursor(userID, streamSeq: head))
    }

    package func allPosition(_ text: String?, head: Int64) throws -> Int64 {
        guard let text else { return 0 }
        let cursor = try Cursor.parse(text)
        guard case .all = cursor.stream else {
            throw StoreError.invalidCursor("cursor belongs to a user stream, not the all stream")
        }
        return try checkEpochAndPosition(cursor, head: head, headCursor: allCursor(seq: head))
    }

    /// The last two cursor checks, shared by both kinds of stream: epoch, then position.
    private func checkEpochAndPosition(_ cursor: Cursor, head: Int64, headCursor: String) throws -> Int64 {
        guard cursor.epoch == epoch else {
            throw StoreError(
                .cursorReset, "cursor is from another epoch of the store", head: headCursor, resetReason: .epochMismatch
            )
        }
        guard cursor.position <= head else {
            throw StoreError(
                .cursorReset, "cursor is past the head of the stream", head: headCursor, resetReason: .cursorAhead)
        }
        return cursor.position
    }

    /// Where a user stream starts for a hello's cursor, given the stream's head as of one
    /// snapshot: a foreign epoch or a cursor past the head is a reset, not an error.
    package func userStreamStart(
        userID: String, cursor: String?, head: (streamSeq: Int64, unread: Int64)
    ) throws -> StreamStart {
        do {
            let position = try userPosition(cursor, userID: userID, head: head.streamSeq)
            return StreamStart(head: head.streamSeq, headUnreadCount: head.unread, position: position, resetReason: nil)
        } catch let error as StoreError where error.code == .cursorReset {
            return StreamStart(
                head: head.streamSeq, headUnreadCount: head.unread, position: nil, resetReason: error.resetReason)
        }
    }

    /// The same for the `all` stream, with the log's head seq.
    package func allStreamStart(cursor: String?, head: Int64) throws -> StreamStart {
        do {
            let position = try allPosition(cursor, head: head)
            return StreamStart(head: head, headUnreadCount: nil, position: position, resetReason: nil)
        } catch let error as StoreError where error.code == .cursorReset {
            return StreamStart(head: head, headUnreadCount: nil, position: nil, resetReason: error.resetReason)
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
