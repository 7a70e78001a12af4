import TidingsStore

/// Group commit: every append request waiting at one moment goes into one transaction. Each
/// request is atomic on its own; a request that fails leaves the others of the group alone.
extension LogWriter {
    /// The state of an open group transaction.
    struct GroupState {
        var head: LogSnapshot
        var pending: [PendingEvent] = []
        /// Events appended in this transaction, in seq order (seqs are consecutive), for
        /// duplicate checks within the group and the commit feed.
        var appended: [StoredEvent] = []

        func appendedEvent(seq: Int64) -> StoredEvent? {
            guard let first = appended.first?.seq, seq >= first, seq - first < appended.count else { return nil }
            return appended[Int(seq - first)]
        }
        var newUsers: [(userID: String, userNo: Int64)] = []
        var newUserNumbers: [String: Int64] = [:]
        var nextUserNo: Int64?
        let now: Int64
    }

    func commitGroup(_ requests: [AppendRequest]) -> [Result<AppendResponse, any Error>] {
        do {
            try database.begin(.immediate)
        } catch {
            let failure = StoreError(.unavailable, "the store cannot start a write transaction: \(error)")
            return requests.map { _ in .failure(failure) }
        }
        do {
            try synchronize()
        } catch {
            database.rollback()
            return requests.map { _ in .failure(unavailable(error)) }
        }
        let startHead = head
        var group = GroupState(head: head, now: context.options.clock())
        var outcomes: [Result<AppendResponse, any Error>] = []
        for request in requests {
            let mark = (head: group.head, pending: group.pending.count, users: group.newUsers.count)
            do {
                outcomes.append(.success(try appendRequest(request, group: &group)))
            } catch {
                context.overlay.withLock { $0.truncate(after: mark.head.headSeq) }
                while let last = group.appended.last, last.seq > mark.head.headSeq { group.appended.removeLast() }
                group.pending.removeLast(group.pending.count - mark.pending)
                for user in group.newUsers[mark.users...] { group.newUserNumbers[user.userID] = nil }
                group.newUsers.removeLast(group.newUsers.count - mark.users)
                group.nextUserNo = group.newUsers.last.map { $0.userNo + 1 } ?? group.nextUserNo
                group.head = mark.head
                outcomes.append(.failure(error))
            }
        }
        guard !group.pending.isEmpty else {
            database.rollback()
            return outcomes
        }
        let previousTail = tail
        do {
            let statement = try database.cached("INSERT INTO users (user_no, user_id) VALUES (?1, ?2)")
            for user in group.newUsers {
                statement.bind(1, user.userNo)
                statement.bind(2, user.userID)
                try statement.run()
            }
            group.head.sealedSeq = try writeEvents(group.pending, sealedSeq: startHead.sealedSeq)
            try group.head.write(database)
            try database.commit()
        } catch {
            database.rollback()
            context.overlay.withLock { $0.truncate(after: startHead.headSeq) }
            tail = previousTail
            let failure = unavailable(error)
            return outcomes.map { outcome in
                if case .success = outcome { return .failure(failure) }
                return outcome
            }
        }
        context.overlay.withLock { $0.commit() }
        for user in group.newUsers { context.users.remember(user.userID, user.userNo) }
        head = group.head
        context.commitFeed.publish(group.appended, after: startHead.anchor)
        return outcomes
    }

    private func unavailable(_ error: any Error) -> StoreError {
        if let error = error as? StoreError { return error }
        return StoreError(.unavailable, "the store could not commit the append: \(error)")
    }

    private func appendRequest(_ request: AppendRequest, group: inout GroupState) throws -> AppendResponse {
        var response = AppendResponse(results: [], headSeq: 0)
        response.results.reserveCapacity(request.events.count)
        for (index, event) in request.events.enumerated() {
            do {
                response.results.append(
                    try appendEvent(
                        event, group: &group, collectMarked: request.collectMarked, marked: &response.markedSeqs))
            } catch let error as StoreError {
                throw error.index == nil ? error.at(index: index) : error
            }
        }
        if let user = request.reportUser {
            if let userNo = try userNumber(user, group: group) {
                response.userHead = try view(group).head(user: userNo)
            } else {
                response.userHead = (0, .zero)
            }
        }
        response.headSeq = group.head.headSeq
        response.anchor = group.head.anchor
        return response
    }

    /// The projection as of the end of the open transaction.
    func view(_ group: GroupState) -> ProjectionView {
        ProjectionView(
            base: ProjectionBase(database: database), overlay: context.overlay,
            lower: context.overlay.withLock { $0.baseSeq }, upper: .max)
    }

    private func userNumber(_ userID: String, group: GroupState) throws -> Int64? {
        if let number = group.newUserNumbers[userID] { return number }
        return try context.users.number(userID, database: database)
    }

    private func appendEvent(
        _ event: ValidatedEvent, group: inout GroupState, collectMarked: Bool, marked: inout [Int64]
    ) throws -> AppendResult {
        let existingUser = try userNumber(event.userID, group: group)
        if let id = event.id, let original = try originalEvent(id: Array(id.utf8), group: group) {
            guard original.type == event.type, original.userID == event.userID,
                JSONEquality.equal(original.data, event.data)
            else {
                throw StoreError.conflict("id \(id) already names a different event (seq \(original.seq))")
            }
            return AppendResult(status: .duplicate, event: original)
        }
        let seq = group.head.headSeq + 1
        let userNo: Int64
        if let existingUser {
            userNo = existingUser
        } else {
            if group.nextUserNo == nil {
                let statement = try database.cached("SELECT COALESCE(max(user_no), 0) + 1 FROM users")
                _ = try statement.step()
                group.nextUserNo = statement.int64(0)
                statement.reset()
            }
            userNo = group.nextUserNo!
        }
        var view = view(group)
        if event.type.isBulk && event.options.kind != nil {
            // A kind filter reads the created events it selects from: earlier in this
            // transaction, or committed.
            let appended = group.appended
            view.eventData = { seq in
                if let first = appended.first?.seq, seq >= first, seq - first < appended.count {
                    return appended[Int(seq - first)].data
                }
                guard let event = try self.committedEvent(seq: seq) else {
                    throw StoreError(.internal, "the log has no event \(seq)")
                }
                return event.data
            }
        }
        let userHead =
            existingUser == nil ? (streamSeq: Int64(0), counts: InboxCounts.zero) : try view.head(user: userNo)
        let key = event.notificationKey
        let input = ProjectionReducer.Input(
            seq: seq, userNo: userNo, type: event.type, notification: key, upToSeq: event.upToSeq,
            options: event.options, countsBefore: userHead.counts)
        let verdict =
            existingUser == nil && event.type != .created ? .noop : try ProjectionReducer.evaluate(input, view: view)
        let countsAfter: InboxCounts
        let changes: [NotificationState]
        switch verdict {
        case .conflict(let reason): throw StoreError.conflict(reason)
        case .noop: return AppendResult(status: .noop, event: nil)
        case .append(let after, let changed):
            countsAfter = after
            changes = changed
        }
        if event.type == .snoozed && event.options.until <= max(group.now, group.head.headTimestamp) {
            throw StoreError.badRequest("data.until must be later than now")
        }
        if event.type.isBulk && collectMarked { marked += changes.map(\.createdSeq) }
        if existingUser == nil {
            group.newUsers.append((event.userID, userNo))
            group.newUserNumbers[event.userID] = userNo
            group.nextUserNo = userNo + 1
        }
        let timestamp = max(group.now, group.head.headTimestamp)
        let explicitID = event.id.map { Array($0.utf8) }
        let record = LogRecord(
            type: event.type, userNo: userNo, streamSeq: userHead.streamSeq + 1, timestampMilliseconds: timestamp,
            explicitID: explicitID, notificationID: event.notificationID, upToSeq: event.upToSeq,
            transformedData: event.transformedData)
        let idText = explicitID ?? context.derivedIDs.text(seq: seq)
        var canonical: [UInt8] = []
        canonical.reserveCapacity(event.data.count + 96)
        HashChain.canonicalBytes(
            seq: seq, streamSeq: record.streamSeq, timestampMilliseconds: timestamp, type: event.type,
            userID: event.userID.utf8, id: idText, data: event.data, into: &canonical)
        let hash = HashChain.next(previous: group.head.headHash, canonical: canonical)
        context.overlay.withLock {
            $0.append(
                OverlayEvent(
                    seq: seq, userNo: userNo, streamSeq: record.streamSeq, type: event.type, countsAfter: countsAfter,
                    notification: event.type == .created ? key : [], changes: changes, explicitID: explicitID))
        }
        group.pending.append(PendingEvent(seq: seq, record: record, hash: hash, rawSize: event.rawSize))
        group.head.headSeq = seq
        group.head.headHash = hash
        group.head.headTimestamp = timestamp
        let stored = StoredEvent(
            seq: seq, streamSeq: record.streamSeq, userID: event.userID, id: String(decoding: idText, as: UTF8.self),
            type: event.type, timestampMilliseconds: timestamp, data: event.data, counts: countsAfter,
            anchor: CursorAnchor(seq: seq, hash: hash))
        group.appended.append(stored)
        return AppendResult(status: .appended, event: stored)
    }

    /// The event an id already names, in the log or earlier in this transaction. Throws
    /// `conflict` for an id of the form this store assigns that does not name such an event.
    private func originalEvent(id: [UInt8], group: GroupState) throws -> StoredEvent? {
        if let derivedSeq = context.derivedIDs.seq(of: id) {
            if derivedSeq >= 1, derivedSeq <= group.head.headSeq, let event = try event(seq: derivedSeq, group: group),
                Array(event.id.utf8) == id
            {
                return event
            }
            throw StoreError.conflict(
                "id \(String(decoding: id, as: UTF8.self)) has the form of ids this store assigns; choose another id")
        }
        for seq in try view(group).candidateSeqs(forExplicitID: id) {
            if let event = try event(seq: seq, group: group), Array(event.id.utf8) == id { return event }
        }
        return nil
    }

    private func event(seq: Int64, group: GroupState) throws -> StoredEvent? {
        if let event = group.appendedEvent(seq: seq) { return event }
        return try committedEvent(seq: seq)
    }

    /// An event committed before the open transaction.
    private func committedEvent(seq: Int64) throws -> StoredEvent? {
        guard seq <= head.headSeq else { return nil }
        let record: LogRecord
        if let pending = tail.first(where: { $0.seq == seq }) {
            record = pending.record
        } else {
            guard let entry = try context.logReader(database).records(seqs: [seq], sealedSeq: head.sealedSeq).first
            else { return nil }
            record = entry.record
        }
        return try context.storedEvent(
            seq: seq, record: record, database: database, counts: nil, anchor: head.anchor)
    }
}
