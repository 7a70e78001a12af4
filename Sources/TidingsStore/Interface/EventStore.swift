/// A Tidings store: the append-only, compressed, hash-chained event log with its unread
/// projection, as the server and the command line see it. One implementation per storage engine,
/// each in its own module (`SQLiteStore` in TidingsSQLite, the embedded default); the records,
/// blocks, compression, hash chain and projection rules they share live in this module.
///
/// Every method keeps the promises of docs/PROTOCOL.md whichever engine answers: cursors carry
/// the store's epoch, `seq` is gapless across everyone who appends, an append returns once it is
/// durable, and the projection always agrees with the log.
public protocol EventStore: AnyObject, Sendable {
    /// The store's epoch, as carried by every cursor.
    var epoch: UInt64 { get }
    /// A secret of this store (32 bytes), shared by every process that opens it: live-event
    /// messages between processes are signed with it.
    var fanoutKey: [UInt8] { get }
    /// The engine's read queues, with how long their reads have waited.
    var readLaneStatistics: [ReadLaneStatistics] { get }

    // MARK: Appending and marking

    /// Appends one event or a batch, atomically: every event is checked first (413, then 400,
    /// with the failing event's index), then each in order is appended, found to be a
    /// `duplicate` of an earlier event with its id, or is a `noop`; a conflict fails the whole
    /// request. Returns after the transaction is durably committed.
    func append(_ events: [NewEvent]) async throws -> [AppendResult]
    /// Changes the state of the user's notifications (`StateChange`): one event per named
    /// notification whose state it changes, or one bulk event when it changes any; what changes
    /// nothing appends nothing. The outcome names the notifications changed, oldest first for
    /// `all`, with the user's counts and head after the request.
    func mark(userID: String, _ change: StateChange) async throws -> ReadOutcome

    // MARK: Reading

    /// A page of the user's stream after `after` (a user-stream cursor; nil: from the start).
    func userEvents(userID: String, after: String?, limit: Int) async throws -> EventPage
    /// A page of the `all` stream after `after` that passes `filter`.
    func allEvents(after: String?, filter: EventFilter, limit: Int) async throws -> EventPage
    /// The user's counts, oldest unread notifications (at most `limit`) and stream head.
    func unread(userID: String, limit: Int) async throws -> UnreadSnapshot
    /// The user's notifications newest first, with their state, from the projection: those
    /// older than `before` (a `nextBefore` of an earlier page; nil: from the newest) that pass
    /// `filter`, at most `limit`, with the counts and stream head of the same snapshot.
    func notifications(
        userID: String, before: String?, filter: NotificationListFilter, limit: Int
    ) async throws -> NotificationList
    /// The user's stream head and counts, in one snapshot, with that snapshot's head.
    func userHead(userID: String) async throws -> (streamSeq: Int64, counts: InboxCounts, anchor: CursorAnchor)
    /// The user's counts as they were right after their event at `streamSeq` (zero at 0).
    func counts(userID: String, atStreamSeq streamSeq: Int64) async throws -> InboxCounts
    /// The newest event of the log: its seq and its chain hash's check bytes.
    func head() async throws -> CursorAnchor
    /// Checks a WebSocket hello's cursor for a user stream against the head, in one snapshot.
    func startUserStream(userID: String, cursor: String?) async throws -> StreamStart
    /// The same for the `all` stream.
    func startAllStream(cursor: String?) async throws -> StreamStart
    /// An export of every event of the `all` stream after `after` that passes `filter`, through
    /// the head as it is now. Checks the cursor first, so a caller can answer an error before
    /// the first byte.
    func export(after: String?, filter: EventFilter) async throws -> LogExport
    /// Store-wide figures.
    func stats() async throws -> StoreStats
    /// Snoozes that end at or before `now` (milliseconds since the epoch) and are still in
    /// force, soonest first, at most `limit` of them: what the server's sweeper ends.
    func dueSnoozes(asOf now: Int64, limit: Int) async throws -> [DueSnooze]

    // MARK: Auditing and maintenance

    /// Recomputes the whole hash chain and checks every block, and optionally whether the log
    /// still holds a head an auditor recorded earlier (`seq`, `hash`).
    func verifyLog(
        checkpoint: (seq: Int64, hash: [UInt8])?, progress: (@Sendable (Int64, Int64) -> Void)?
    ) async throws -> LogVerification
    /// Rebuilds the projection from the log and compares it with the live one.
    func verifyProjections() async throws -> ProjectionVerification
    /// Rebuilds the projection from the log while reads and appends go on.
    func rebuildProjections(progress: (@Sendable (RebuildProgress) -> Void)?) async throws
    /// Starts an online rebuild in the background; throws `conflict` while one runs.
    func startProjectionRebuild() throws -> RebuildJob
    /// The online rebuild job, if one ever ran since the store was opened.
    var rebuildJob: RebuildJob? { get }

    /// Live delivery's read of the log: the `all` stream after `after` (up to `limit` events
    /// looked at), keeping the events of `users` (every event when nil), each with its user's
    /// unread count after it where the engine reads it cheaply (a user stream without the count
    /// reads its own stream for it). A node reads every event other nodes commit this way, so an
    /// engine shared by nodes should skip the others' users before building their events.
    func liveEvents(after: String?, users: Set<String>?, limit: Int) async throws -> LivePage

    // MARK: Listening

    /// Calls `listener` with the events of every transaction this process commits, in seq order,
    /// each with its user's unread count after it, and the log's head before them (the anchor
    /// they follow). Hand the events on and return. Events other processes or nodes append do
    /// not pass here.
    func onCommit(_ listener: @escaping @Sendable (_ events: [StoredEvent], _ previous: CursorAnchor) -> Void)
    /// Calls `listener` for every failure of the store's own I/O and once when a failing
    /// operation succeeds again. Log or count and return.
    func onFault(_ listener: @escaping @Sendable (StoreFault) -> Void)
    /// Calls `listener` whenever the engine learns that other processes or nodes may have
    /// appended (a notification from the database, a reconnect), so that live delivery reads
    /// the log at once instead of at its next tick. Engines that cannot tell never call it.
    func onLogAdvanced(_ listener: @escaping @Sendable () -> Void)
    /// Drops what the engine cached of the log (blocks, dictionaries, user names): the log's
    /// history changed under it (a failover lost commits), so what it learned may name other
    /// events now. Engines whose history cannot change under them need not do anything.
    func forgetCachedHistory()
    /// Calls `listener` when the engine learns that the log's history may have changed under
    /// it (its database failed over to another server): what was streamed may be gone until a
    /// read of the log shows otherwise. Engines whose history cannot change never call it.
    func onHistoryInDoubt(_ listener: @escaping @Sendable () -> Void)

    /// Finishes queued appends and lets go of the store's files or connections.
    func close()
}

extension EventStore {
    /// Marks the user's notifications read, appending one `notification.read` per notification
    /// that was unread; ids that are unknown or already read change nothing.
    public func markRead(userID: String, notificationIDs: [String]) async throws -> ReadOutcome {
        try await mark(userID: userID, StateChange(.read, .notifications(notificationIDs)))
    }

    /// Marks every notification of the user created at or before `upToSeq` (all, when nil) read,
    /// with one `notification.read_all`, or nothing when none of them is unread.
    public func markAllRead(userID: String, upToSeq: Int64?) async throws -> ReadOutcome {
        try await mark(userID: userID, StateChange(.read, .all(upToSeq: upToSeq, kind: nil, onlyRead: false)))
    }

    public func liveEvents(after: String?, users: Set<String>?, limit: Int) async throws -> LivePage {
        let page = try await allEvents(after: after, filter: EventFilter(), limit: limit)
        let kept = users.map { users in page.events.filter { users.contains($0.userID) } } ?? page.events
        return LivePage(events: kept, through: page.events.last.map { ($0.seq, $0.anchor) }, hasMore: page.hasMore)
    }

    public func onLogAdvanced(_ listener: @escaping @Sendable () -> Void) {}
    public func forgetCachedHistory() {}
    public func onHistoryInDoubt(_ listener: @escaping @Sendable () -> Void) {}

    /// The epoch as text (16 lowercase hex digits), as the WebSocket `welcome` shows it.
    public var epochText: String {
        let text = String(epoch, radix: 16)
        return String(repeating: "0", count: 16 - text.count) + text
    }

    /// The cursor of a position of the user's stream, made in the history `anchor` names.
    public func userCursor(_ userID: String, streamSeq: Int64, anchor: CursorAnchor) -> String {
        Cursor.user(userID, epoch: epoch, streamSeq: streamSeq, anchor: anchor).text
    }

    public func allCursor(seq: Int64, anchor: CursorAnchor) -> String {
        Cursor.all(epoch: epoch, seq: seq, anchor: anchor).text
    }

    /// The cursor of an event in the user stream (`userStream`) or the `all` stream.
    public func cursor(of event: StoredEvent, userStream: Bool) -> String {
        userStream
            ? userCursor(event.userID, streamSeq: event.streamSeq, anchor: event.anchor)
            : allCursor(seq: event.seq, anchor: event.anchor)
    }

    /// A cursor that names a position alone, as version 1 cursors did: it resumes without the
    /// history check. For tools and tests that pick positions; every answer carries anchors.
    package func unanchoredUserCursor(_ userID: String, streamSeq: Int64) -> String {
        Cursor.user(userID, epoch: epoch, streamSeq: streamSeq, anchor: nil).text
    }

    package func unanchoredAllCursor(seq: Int64) -> String {
        Cursor.all(epoch: epoch, seq: seq, anchor: nil).text
    }

    /// The seq of the newest event of the log.
    public func headSeq() async throws -> Int64 {
        try await head().seq
    }

    public func userEvents(userID: String, after: String?) async throws -> EventPage {
        try await userEvents(userID: userID, after: after, limit: Limits.pageLimitDefault)
    }

    public func allEvents(after: String?, filter: EventFilter = EventFilter()) async throws -> EventPage {
        try await allEvents(after: after, filter: filter, limit: Limits.pageLimitDefault)
    }

    public func unread(userID: String) async throws -> UnreadSnapshot {
        try await unread(userID: userID, limit: Limits.pageLimitDefault)
    }

    public func export(after: String?) async throws -> LogExport {
        try await export(after: after, filter: EventFilter())
    }

    public func verifyLog() async throws -> LogVerification {
        try await verifyLog(checkpoint: nil, progress: nil)
    }

    public func rebuildProjections() async throws {
        try await rebuildProjections(progress: nil)
    }

    /// Writes the export to `body`, chunk by chunk, and returns the number of events; `body`
    /// returns false to stop.
    @discardableResult
    public func exportNDJSON(
        after: String?, filter: EventFilter = EventFilter(), _ body: (_ chunk: [UInt8], _ lastSeq: Int64) throws -> Bool
    ) async throws -> Int {
        var count = 0
        for try await chunk in try await export(after: after, filter: filter) {
            count += chunk.events
            guard try body(chunk.bytes, chunk.lastSeq) else { break }
        }
        return count
    }
}
