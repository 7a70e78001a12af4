import TidingsStore

/// One append request of a group: its events, already validated.
struct AppendRequest: Sendable {
    var events: [ValidatedEvent]
    /// A bulk event's caller wants the ids it changed (`markAllRead`).
    var collectMarked = false
    /// Report this user's head after the request.
    var reportUser: String?
}

struct AppendResponse: Sendable {
    var results: [AppendResult] = []
    var headSeq: Int64 = 0
    /// The group's head after this request, as cursors carry it.
    var anchor = CursorAnchor.start
    var userHead: (streamSeq: Int64, counts: InboxCounts)?
    /// The notification ids a bulk event changed, oldest first.
    var markedIDs: [String] = []
}

/// What a group transaction has decided so far: the projection with its changes, the events
/// appended, and the rows to write. A request that fails puts back the state from before it.
struct GroupPlan {
    var view: GroupView
    var head: LogHead
    let now: Int64
    var appended: [StoredEvent] = []
    var pending: [PendingEvent] = []
    /// (user_no, stream_seq, seq, counts after) of every appended event.
    var entries: [(userNo: Int64, streamSeq: Int64, seq: Int64, countsAfter: InboxCounts)] = []
    var explicitIDs: [(id: String, seq: Int64)] = []
    /// Client ids appended in this group, to their index in `appended`.
    private var groupIDs: [String: Int] = [:]
    /// Events of the log that ids of this group name (read ahead), by id.
    let originals: [String: StoredEvent]
    let derivedIDs: DerivedEventID

    init(view: GroupView, head: LogHead, now: Int64, originals: [String: StoredEvent], derivedIDs: DerivedEventID) {
        self.view = view
        self.head = head
        self.now = now
        self.originals = originals
        self.derivedIDs = derivedIDs
    }

    /// Plans one request atomically: on failure the plan is as it was before it.
    mutating func apply(_ request: AppendRequest) -> Result<AppendResponse, any Error> {
        let mark = (
            appended: appended.count, pending: pending.count, entries: entries.count, ids: explicitIDs.count,
            head: head, view: view.journalMark
        )
        do {
            var response = AppendResponse()
            response.results.reserveCapacity(request.events.count)
            for (index, event) in request.events.enumerated() {
                do {
                    response.results.append(try append(event, marked: &response.markedIDs))
                } catch let error as StoreError {
                    throw error.index == nil ? error.at(index: index) : error
                }
            }
            if !request.collectMarked { response.markedIDs = [] }
            if let user = request.reportUser {
                response.userHead = try view.existingUserNo(user).map { try view.head(user: $0) } ?? (0, .zero)
            }
            response.headSeq = head.seq
            response.anchor = CursorAnchor(seq: head.seq, hash: head.hash)
            return .success(response)
        } catch {
            appended.removeLast(appended.count - mark.appended)
            pending.removeLast(pending.count - mark.pending)
            entries.removeLast(entries.count - mark.entries)
            for (id, _) in explicitIDs[mark.ids...] { groupIDs[id] = nil }
            explicitIDs.removeLast(explicitIDs.count - mark.ids)
            head = mark.head
            view.undo(to: mark.view)
            return .failure(error)
        }
    }

    private mutating func append(_ event: ValidatedEvent, marked: inout [String]) throws -> AppendResult {
        if let id = event.id, let original = try original(id: id) {
            guard original.type == event.type, original.userID == event.userID,
                JSONEquality.equal(original.data, event.data)
            else {
                throw StoreError.conflict("id \(id) already names a different event (seq \(original.seq))")
            }
            return AppendResult(status: .duplicate, event: original)
        }
        let existingUser = view.existingUserNo(event.userID)
        if existingUser == nil && event.type != .created { return AppendResult(status: .noop, event: nil) }
        let seq = head.seq + 1
        let userNo = existingUser ?? view.userNo(for: event.userID)
        let userHead = try view.head(user: userNo)
        let key = event.notificationKey
        let input = ProjectionReducer.Input(
            seq: seq, userNo: userNo, type: event.type, notification: key, upToSeq: event.upToSeq,
            options: event.options, countsBefore: userHead.counts)
        let countsAfter: InboxCounts
        let changes: [NotificationState]
        switch try ProjectionReducer.evaluate(input, view: view) {
        case .conflict(let reason): throw StoreError.conflict(reason)
        case .noop: return AppendResult(status: .noop, event: nil)
        case .append(let after, let changed):
            countsAfter = after
            changes = changed
        }
        if event.type == .snoozed && event.options.until <= max(now, head.timestamp) {
            throw StoreError.badRequest("data.until must be later than now")
        }
        if event.type == .created {
            view.create(user: userNo, id: key, state: changes[0], kind: event.options.kind)
        } else {
            for change in changes {
                let id = view.set(user: userNo, change)
                if event.type.isBulk {
                    var text: [UInt8] = []
                    id.withUnsafeBytes { RecordView.appendIdentifierText($0, to: &text) }
                    marked.append(String(decoding: text, as: UTF8.self))
                }
            }
        }
        let streamSeq = userHead.streamSeq + 1
        view.advance(user: userNo, streamSeq: streamSeq, counts: countsAfter)
        let timestamp = max(now, head.timestamp)
        let explicitID = event.id.map { Array($0.utf8) }
        let record = LogRecord(
            type: event.type, userNo: userNo, streamSeq: streamSeq, timestampMilliseconds: timestamp,
            explicitID: explicitID, notificationID: event.notificationID, upToSeq: event.upToSeq,
            transformedData: event.transformedData)
        let idText = explicitID ?? derivedIDs.text(seq: seq)
        var canonical: [UInt8] = []
        canonical.reserveCapacity(event.data.count + 96)
        HashChain.canonicalBytes(
            seq: seq, streamSeq: streamSeq, timestampMilliseconds: timestamp, type: event.type,
            userID: event.userID.utf8, id: idText, data: event.data, into: &canonical)
        let hash = HashChain.next(previous: head.hash, canonical: canonical)
        pending.append(PendingEvent(seq: seq, record: record, hash: hash, rawSize: event.rawSize))
        entries.append((userNo, streamSeq, seq, countsAfter))
        if let id = event.id {
            explicitIDs.append((id, seq))
            groupIDs[id] = appended.count
        }
        head.seq = seq
        head.hash = hash
        head.timestamp = timestamp
        let stored = StoredEvent(
            seq: seq, streamSeq: streamSeq, userID: event.userID, id: String(decoding: idText, as: UTF8.self),
            type: event.type, timestampMilliseconds: timestamp, data: event.data, counts: countsAfter,
            anchor: CursorAnchor(seq: seq, hash: hash))
        appended.append(stored)
        return AppendResult(status: .appended, event: stored)
    }

    /// The event an id already names, in the log or earlier in this group. Throws `conflict`
    /// for an id of the form this store assigns that does not name such an event.
    private func original(id: String) throws -> StoredEvent? {
        if let derivedSeq = derivedIDs.seq(of: id.utf8) {
            if let original = originals[id] { return original }
            if let first = appended.first?.seq, derivedSeq >= first, derivedSeq - first < appended.count,
                appended[Int(derivedSeq - first)].id == id
            {
                return appended[Int(derivedSeq - first)]
            }
            throw StoreError.conflict("id \(id) has the form of ids this store assigns; choose another id")
        }
        if let index = groupIDs[id] { return appended[index] }
        return originals[id]
    }
}
