public import TidingsStore

extension SQLiteStore {
    /// Checks a WebSocket hello's cursor for a user stream against the head, in one snapshot.
    /// Throws `invalid_cursor` for a malformed cursor or one of another stream; a foreign epoch
    /// or a cursor past the head comes back as a reset.
    public func startUserStream(userID: String, cursor: String?) async throws -> StreamStart {
        try Self.checkUser(userID)
        return try await withSnapshot { read in
            let userNo = try read.userNumber(userID)
            let head = try userNo.map { try read.view.head(user: $0) } ?? (streamSeq: 0, counts: .zero)
            return try self.userStreamStart(userID: userID, cursor: cursor, head: head, log: read)
        }
    }

    /// The same for the `all` stream.
    public func startAllStream(cursor: String?) async throws -> StreamStart {
        try await withSnapshot { read in
            try self.allStreamStart(cursor: cursor, log: read)
        }
    }
}
