import Logging
import NIOCore
import PostgresNIO
import Synchronization
import TidingsStore

/// Group commit on PostgreSQL: every append request waiting at one moment goes into one
/// transaction on the primary, which locks the head row first. Each request is atomic on its
/// own; a request that fails leaves the others of the group alone. The outbox is drained in the
/// same transactions, so a row is marked done exactly when its event commits.
final class PostgresWriter: Sendable {
    private struct Waiting {
        var request: AppendRequest
        var continuation: CheckedContinuation<AppendResponse, any Error>
    }

    private struct Queue {
        var waiting: [Waiting] = []
        var running = false
        var outboxDue = false
        var closed = false
    }

    private let queue = Mutex(Queue())
    private let servers: PostgresServers
    private let context: PostgresContext
    private let compression = CompressionState()
    let outbox: PostgresOutbox

    /// Drops the compressor's dictionary with the context's caches (`forgetHistory`).
    func forgetHistory() {
        compression.forget()
    }

    init(servers: PostgresServers, context: PostgresContext) {
        self.servers = servers
        self.context = context
        outbox = PostgresOutbox(context: context)
    }

    func append(_ request: AppendRequest) async throws -> AppendResponse {
        try await withCheckedThrowingContinuation { continuation in
            let start = queue.withLock { queue -> Bool? in
                guard !queue.closed else { return nil }
                queue.waiting.append(Waiting(request: request, continuation: continuation))
                guard !queue.running else { return false }
                queue.running = true
                return true
            }
            switch start {
            case nil: continuation.resume(throwing: StoreError(.unavailable, "the store is closed"))
            case true?: Task { await self.drain() }
            case false?: break
            }
        }
    }

    /// Asks the writer to look at the outbox soon.
    func outboxChanged() {
        let start = queue.withLock { queue -> Bool in
            guard !queue.closed else { return false }
            queue.outboxDue = true
            guard !queue.running else { return false }
            queue.running = true
            return true
        }
        if start { Task { await self.drain() } }
    }

    func close() {
        let waiting = queue.withLock { queue in
            queue.closed = true
            defer { queue.waiting.removeAll() }
            return queue.waiting
        }
        for item in waiting { item.continuation.resume(throwing: StoreError(.unavailable, "the store is closed")) }
    }

    /// Commits groups until nothing waits.
    private func drain() async {
        while true {
            let (group, drainOutbox) = queue.withLock { queue -> ([Waiting], Bool) in
                var taken: [Waiting] = []
                var events = 0
                while let first = queue.waiting.first,
                    taken.isEmpty || events + first.request.events.count <= context.options.groupEventsMax
                {
                    events += first.request.events.count
                    taken.append(queue.waiting.removeFirst())
                }
                let outbox = queue.outboxDue && context.options.drainsOutbox
                queue.outboxDue = false
                if taken.isEmpty && !outbox { queue.running = false }
                return (taken, outbox)
            }
            if group.isEmpty && !drainOutbox { return }
            let outcomes = await commit(group.map(\.request), drainOutbox: drainOutbox)
            for (item, outcome) in zip(group, outcomes) { item.continuation.resume(with: outcome) }
        }
    }

    private func commit(_ requests: [AppendRequest], drainOutbox: Bool) async -> [Result<AppendResponse, any Error>] {
        do {
            let committed = try await servers.withConnection { [self] connection in
                try await connection.transaction(logger: context.logger) { connection in
                    try await self.group(requests, drainOutbox: drainOutbox, on: connection)
                }
            }
            committed.finish(context)
            if committed.outboxMore { outboxChanged() }
            return committed.outcomes
        } catch {
            // A failed drain is tried again at the next poll of the outbox, not at once: with
            // the database down, it would fail again at once, in a loop.
            compression.reset()
            let failure = PostgresErrors.storeError(error, server: "the primary")
            return requests.map { _ in .failure(failure) }
        }
    }

    /// What a committed group hands on: answers, the events for listeners, blocks to cache.
    private struct Committed: Sendable {
        var outcomes: [Result<AppendResponse, any Error>]
        var appended: [StoredEvent]
        var blocks: [DecodedBlock]
        var users: [(Int64, String)]
        var outboxMore: Bool
        /// The head the group locked: its events follow it.
        var previous: CursorAnchor

        func finish(_ context: PostgresContext) {
            context.rememberUsers(users)
            for block in blocks { context.blocks.insert(block) }
            context.noteBlocks(blocks.map { ($0.firstSeq, $0.lastSeq) })
            if !appended.isEmpty { context.commitFeed.publish(appended, after: previous) }
        }
    }

    private func group(
        _ requests: [AppendRequest], drainOutbox: Bool, on connection: PostgresConnection
    ) async throws -> Committed {
        let head = try await LogHead.read(connection, lock: true, logger: context.logger)
        let commit = GroupCommit(context: context, connection: connection, compression: compression)
        var all = requests
        var rows: [PostgresOutbox.Row] = []
        if drainOutbox {
            rows = try await outbox.pending(on: connection)
            all += rows.compactMap(\.request)
        }
        let (plan, outcomes) = try await commit.plan(all, head: head)
        var more = false
        if drainOutbox {
            try await outbox.mark(rows, outcomes: Array(outcomes[requests.count...]), on: connection)
            more = rows.count >= context.options.outboxBatchMax
        }
        guard !plan.pending.isEmpty else {
            return Committed(
                outcomes: Array(outcomes[..<requests.count]), appended: [], blocks: [], users: [], outboxMore: more,
                previous: CursorAnchor(seq: head.seq, hash: head.hash))
        }
        let (_, blocks) = try await commit.write(plan, startHead: head)
        var decoded: [DecodedBlock] = []
        var index = 0
        for block in blocks {
            var records: [UInt8] = []
            var previous = block.firstTimestamp
            for event in plan.pending[index..<index + block.eventCount] {
                event.record.encode(previousTimestamp: previous, into: &records)
                previous = event.record.timestampMilliseconds
            }
            index += block.eventCount
            decoded.append(
                DecodedBlock(
                    firstSeq: block.firstSeq, eventCount: block.eventCount, firstTimestamp: block.firstTimestamp,
                    typeMask: block.typeMask, records: records))
        }
        let users = plan.view.users.values.filter(\.isNew).map { ($0.userNo, $0.userID) }
        return Committed(
            outcomes: Array(outcomes[..<requests.count]), appended: plan.appended, blocks: decoded, users: users,
            outboxMore: more, previous: CursorAnchor(seq: head.seq, hash: head.hash))
    }
}
