public import TidingsStore

extension SQLiteStore {
    /// Changes the state of the user's notifications (`EventStore.mark`).
    public func mark(userID: String, _ change: StateChange) async throws -> ReadOutcome {
        try Self.checkUser(userID)
        let events = try change.events(userID: userID)
        if events.isEmpty { return try await ReadOutcome.unchanged(userID: userID, store: self) }
        let validated = try AppendBatch.validate(events)
        guard case .notifications(let ids) = change.target else {
            let response = try await writer.append(
                LogWriter.AppendRequest(events: validated, collectMarked: true, reportUser: userID))
            let marked = response.markedSeqs
            let changed: [String] =
                marked.isEmpty
                ? []
                : try await withSnapshot { read in
                    try read.log.records(seqs: marked, sealedSeq: read.snapshot.sealedSeq).map {
                        String(decoding: $0.record.notificationID, as: UTF8.self)
                    }
                }
            let head = response.userHead ?? (0, .zero)
            return ReadOutcome(
                read: changed, counts: head.counts,
                cursor: userCursor(userID, streamSeq: head.streamSeq, anchor: response.anchor),
                headStreamSeq: head.streamSeq, lastSeq: response.results.first?.event?.seq)
        }
        let response = try await writer.append(LogWriter.AppendRequest(events: validated, reportUser: userID))
        let head = response.userHead ?? (0, .zero)
        return ReadOutcome.of(
            read: ids, results: response.results, head: head,
            cursor: userCursor(userID, streamSeq: head.streamSeq, anchor: response.anchor))
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
                let path = (directory as NSStringPath).appending(SQLiteStore.databaseFileName + suffix)
                fileBytes += FileSize.of(path)
            }
            return StoreStats(
                events: read.snapshot.headSeq, users: statement.int64(2), blocks: sealed.blocks,
                rawBytes: sealed.rawBytes + statement.int64(0), storedBytes: sealed.storedBytes + statement.int64(1),
                fileBytes: fileBytes, head: read.head)
        }
    }
}
