/// The answer to a read request (`POST /v1/users/{user_id}/read` and WebSocket `read`).
public struct ReadOutcome: Sendable, Equatable {
    /// Notification ids this request changed to read: in request order, or for "all" oldest first.
    public let read: [String]
    public let unreadCount: Int64
    /// The head of the user stream after the request.
    public let cursor: String
    /// The stream_seq of that head.
    public let headStreamSeq: Int64
    /// The seq of the last event the request appended, if any (live delivery waits for it).
    public let lastSeq: Int64?
}

/// Store-wide figures for `tidings stats` and `GET /v1/stats`.
public struct StoreStats: Sendable, Equatable {
    public let events: Int64
    public let users: Int64
    public let blocks: Int64
    /// Size of the events as appended (compact JSON).
    public let rawBytes: Int64
    /// Size of the log as stored: compressed blocks with their check bytes, and the tail.
    public let storedBytes: Int64
    /// `rawBytes / storedBytes`, 1.0 for an empty log.
    public var compressionRatio: Double { storedBytes == 0 ? 1.0 : Double(rawBytes) / Double(storedBytes) }
    /// Size of the database file and its write-ahead log.
    public let fileBytes: Int64
}

extension Store {
    /// Marks the user's notifications read, appending one `notification.read` per notification
    /// that was unread; ids that are unknown or already read change nothing.
    public func markRead(userID: String, notificationIDs: [String]) async throws -> ReadOutcome {
        try Self.checkUser(userID)
        guard notificationIDs.count <= Limits.readIdentifiersMax else {
            throw StoreError(
                .payloadTooLarge,
                "a read names at most \(Limits.readIdentifiersMax) notifications, not \(notificationIDs.count)")
        }
        for (index, id) in notificationIDs.enumerated() {
            if let problem = Identifier.problem(id.utf8) {
                throw StoreError(.badRequest, "notification_ids[\(index)] \(problem)")
            }
        }
        let events = notificationIDs.map { id in
            var data = Array(#"{"notification_id":"#.utf8)
            JSONText.appendQuoted(id, to: &data)
            data.append(UInt8(ascii: "}"))
            return NewEvent(type: EventType.read.name, userID: userID, data: data)
        }
        if events.isEmpty {
            let head = try await userHead(userID: userID)
            return ReadOutcome(
                read: [], unreadCount: head.unreadCount, cursor: userCursor(userID, streamSeq: head.streamSeq),
                headStreamSeq: head.streamSeq, lastSeq: nil)
        }
        let validated = try Self.validate(events)
        let response = try await writer.append(LogWriter.AppendRequest(events: validated, reportUser: userID))
        var read: [String] = []
        for (index, result) in response.results.enumerated() where result.status == .appended {
            read.append(notificationIDs[index])
        }
        let head = response.userHead ?? (0, 0)
        return ReadOutcome(
            read: read, unreadCount: head.unread, cursor: userCursor(userID, streamSeq: head.streamSeq),
            headStreamSeq: head.streamSeq, lastSeq: response.results.last { $0.status == .appended }?.event?.seq)
    }

    /// Marks every notification of the user created at or before `upToSeq` (all, when nil) read,
    /// with one `notification.read_all`.
    public func markAllRead(userID: String, upToSeq: Int64?) async throws -> ReadOutcome {
        try Self.checkUser(userID)
        if let upToSeq, upToSeq < 1 { throw StoreError.badRequest("up_to_seq must be a positive integer seq") }
        var data = Array("{".utf8)
        if let upToSeq {
            data += Array(#""up_to_seq":"#.utf8)
            JSONText.appendInteger(upToSeq, to: &data)
        }
        data.append(UInt8(ascii: "}"))
        let validated = try Self.validate([NewEvent(type: EventType.readAll.name, userID: userID, data: data)])
        let response = try await writer.append(
            LogWriter.AppendRequest(events: validated, collectMarked: true, reportUser: userID))
        let marked = response.markedSeqs
        let read: [String] =
            marked.isEmpty
            ? []
            : try await withSnapshot { read in
                try read.log.records(seqs: marked, sealedSeq: read.snapshot.sealedSeq).map {
                    String(decoding: $0.record.notificationID, as: UTF8.self)
                }
            }
        let head = response.userHead ?? (0, 0)
        return ReadOutcome(
            read: read, unreadCount: head.unread, cursor: userCursor(userID, streamSeq: head.streamSeq),
            headStreamSeq: head.streamSeq, lastSeq: response.results.first?.event?.seq)
    }

    public func stats() async throws -> StoreStats {
        let directory = context.directory
        let sealedTotals = context.sealedTotals
        return try await withSnapshot { read in
            let sealed = try sealedTotals.current(read.database)
            let statement = try read.database.cached(
                """
                SELECT (SELECT COALESCE(sum(raw_bytes), 0) FROM tail),
                    (SELECT COALESCE(sum(length(record) + length(hash)), 0) FROM tail),
                    (SELECT COALESCE(max(user_no), 0) FROM users)
                """)
            defer { statement.reset() }
            _ = try statement.step()
            var fileBytes: Int64 = 0
            for suffix in ["", "-wal"] {
                let path = (directory as NSStringPath).appending(Store.databaseFileName + suffix)
                fileBytes += FileSize.of(path)
            }
            return StoreStats(
                events: read.snapshot.headSeq, users: statement.int64(2), blocks: sealed.blocks,
                rawBytes: sealed.rawBytes + statement.int64(0), storedBytes: sealed.storedBytes + statement.int64(1),
                fileBytes: fileBytes)
        }
    }
}
