public import TidingsStore

extension SQLiteStore {
    /// Checks a WebSocket hello's cursor for a user stream against the head, in one snapshot.
    /// Throws `invalid_cursor` for a malformed cursor or one of another stream; a foreign epoch
    /// or a cursor past the head comes back as a reset.
    public func startUserStream(userID: String, cursor: String?) async throws -> StreamStart {
        try Self.checkUser(userID)
        return try await withSnapshot { read in
            let userNo = try read.userNumber(userID)
            let head = try userNo.map { try read.view.head(user: $0) } ?? (streamSeq: 0, unread: 0)
            do {
                let position = try self.userPosition(cursor, userID: userID, head: head.streamSeq)
                return StreamStart(
                    head: head.streamSeq, headUnreadCount: head.unread, position: position, resetReason: nil)
            } catch let error as StoreError where error.code == .cursorReset {
                return StreamStart(
                    head: head.streamSeq, headUnreadCount: head.unread, position: nil, resetReason: error.resetReason)
            }
        }
    }

    /// The same for the `all` stream.
    public func startAllStream(cursor: String?) async throws -> StreamStart {
        try await withSnapshot { read in
            let head = read.snapshot.headSeq
            do {
                let position = try self.allPosition(cursor, head: head)
                return StreamStart(head: head, headUnreadCount: nil, position: position, resetReason: nil)
            } catch let error as StoreError where error.code == .cursorReset {
                return StreamStart(head: head, headUnreadCount: nil, position: nil, resetReason: error.resetReason)
            }
        }
    }
}
