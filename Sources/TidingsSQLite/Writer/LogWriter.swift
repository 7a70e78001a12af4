import Dispatch
import Synchronization
import TidingsStore

/// The single writer of a store in this process: it owns the write connection and batches every
/// append waiting at a moment into one transaction (group commit), so many concurrent appenders
/// share one durable commit. It runs on its own serial dispatch queue, never on Swift's
/// cooperative pool or an event loop, since SQLite blocks.
///
/// Other work that must not interleave with appends (checkpoints, catching up with other
/// processes, rebuild steps) runs as jobs on the same queue.
final class LogWriter: @unchecked Sendable {
    // @unchecked: every property below `queue` is touched only by jobs running on `queue`
    // (a serial queue); `jobs` is a Mutex. Callers reach the writer only through `submit`.
    let context: StoreContext
    private let queue = DispatchQueue(label: "tidings.writer")
    private let jobs = Mutex(JobQueue())

    let database: Database
    /// The committed head as this writer knows it.
    var head: LogSnapshot
    /// Committed events not yet sealed into a block, oldest first.
    var tail: [PendingEvent] = []
    var compressor: LZ4Compressor
    var dictionaryID: Int64
    /// Record bytes in sealed blocks, tracked until the store has a dictionary.
    var sealedRecordBytes: Int64 = 0

    struct AppendRequest: Sendable {
        var events: [ValidatedEvent]
        /// For bulk events: report the created seqs each changed.
        var collectMarked = false
        /// Report this user's stream head and counts after the request.
        var reportUser: String?
    }

    struct AppendResponse: Sendable {
        var results: [AppendResult]
        var markedSeqs: [Int64] = []
        var userHead: (streamSeq: Int64, counts: InboxCounts)? = nil
        /// The committed head after this request (for the caller's next snapshot).
        var headSeq: Int64
        /// The same head as cursors carry it.
        var anchor = CursorAnchor.start
    }

    private enum Job {
        case append(AppendRequest, CheckedContinuation<AppendResponse, any Error>)
        case task(@Sendable (LogWriter) -> Void)
    }

    private struct JobQueue {
        var pending: [Job] = []
        var draining = false
        var closed = false
    }

    init(context: StoreContext, database: Database) throws {
        self.context = context
        self.database = database
        head = try LogSnapshot.read(database)
        dictionaryID = 0
        compressor = LZ4Compressor(dictionary: nil)
        try loadDictionary()
        try loadTail()
        if dictionaryID == 0 {
            let statement = try database.prepare("SELECT COALESCE(sum(records_bytes), 0) FROM blocks")
            _ = try statement.step()
            sealedRecordBytes = statement.int64(0)
        }
    }

    // MARK: Submitting work

    func append(_ request: AppendRequest) async throws -> AppendResponse {
        try await withCheckedThrowingContinuation { continuation in
            enqueue(.append(request, continuation)) {
                continuation.resume(throwing: StoreError(.unavailable, "the store is closed"))
            }
        }
    }

    /// Runs `body` on the writer's queue, between group commits.
    func perform<T: Sendable>(_ body: @escaping @Sendable (LogWriter) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            enqueue(.task({ writer in continuation.resume(with: Result { try body(writer) }) })) {
                continuation.resume(throwing: StoreError(.unavailable, "the store is closed"))
            }
        }
    }

    /// Runs `body` on the writer's queue and waits; for opening and closing.
    func performSync<T>(_ body: (LogWriter) throws -> T) rethrows -> T {
        try queue.sync { try body(self) }
    }

    private func enqueue(_ job: Job, ifClosed: () -> Void) {
        let startDrain = jobs.withLock { state -> Bool? in
            guard !state.closed else { return nil }
            state.pending.append(job)
            if state.draining { return false }
            state.draining = true
            return true
        }
        guard let startDrain else {
            ifClosed()
            return
        }
        if startDrain { queue.async { self.drain() } }
    }

    /// Refuses new work; work already queued still runs.
    func close() {
        jobs.withLock { $0.closed = true }
        queue.sync {}
    }

    private func drain() {
        while true {
            let batch = jobs.withLock { state -> [Job] in
                guard !state.pending.isEmpty else {
                    state.draining = false
                    return []
                }
                if case .task = state.pending[0] { return [state.pending.removeFirst()] }
                // Take consecutive appends up to the group limit (at least one request).
                var taken = 0
                var events = 0
                while taken < state.pending.count, case .append(let request, _) = state.pending[taken] {
                    if taken > 0 && events + request.events.count > context.options.groupEventsMax { break }
                    events += request.events.count
                    taken += 1
                }
                let batch = Array(state.pending[0..<taken])
                state.pending.removeFirst(taken)
                return batch
            }
            if batch.isEmpty { return }
            if case .task(let body) = batch[0] {
                body(self)
                continue
            }
            let appends = batch.compactMap { job -> (AppendRequest, CheckedContinuation<AppendResponse, any Error>)? in
                if case .append(let request, let continuation) = job { return (request, continuation) }
                return nil
            }
            if let refusal = overlayRefusal() {
                for append in appends { append.1.resume(throwing: refusal) }
                continue
            }
            let outcomes = commitGroup(appends.map(\.0))
            for (index, outcome) in outcomes.enumerated() { appends[index].1.resume(with: outcome) }
            checkpointIfDue()
        }
    }
}
