import Synchronization
public import TidingsStore

/// Watches the log's head and hands this process's hub every event it has not seen: events
/// other processes appended whose Redis message was lost or late, or all of them when Redis is
/// down or not configured. Connections skip what they already sent, so handing an event twice
/// is harmless; missing one is not, and this is what makes sure nothing is.
public final class LogWatcher: Sendable {
    private let store: any EventStore
    private let hub: Hub
    private let interval: Duration
    /// Every event up to here has been handed to the hub (by a local commit or a catch-up).
    private let covered: Mutex<Position>
    private let wakeRequested = Atomic<Bool>(false)
    private let forkListeners = Mutex<[@Sendable (HistoryFork) -> Void]>([])
    /// Events read per page while catching up.
    static let pageSize = 1_000

    /// A position of the `all` stream with the history it was reached in.
    private struct Position {
        var seq: Int64
        var anchor: CursorAnchor
    }

    /// The log's history changed under this process: events it handed to the hub (through
    /// `lost`) are not in the log any more, and their seqs may belong to other events now.
    public struct HistoryFork: Sendable, Equatable {
        /// The last position this process had handed on, and the log's head when it noticed.
        public let lost: CursorAnchor
        public let head: CursorAnchor
    }

    public init(store: any EventStore, hub: Hub, interval: Duration) {
        self.store = store
        self.hub = hub
        self.interval = interval
        covered = Mutex(Position(seq: 0, anchor: .start))
    }

    /// Calls `listener` when the watcher finds the log's history changed (a failover lost
    /// commits it had delivered): the caller closes its streams, so each client resumes through
    /// its cursor and gets `reset` where its history was lost.
    public func onFork(_ listener: @escaping @Sendable (HistoryFork) -> Void) {
        forkListeners.withLock { $0.append(listener) }
    }

    /// Starts from the current head (connections read older events from the log themselves).
    public func start() async throws {
        let head = try await store.head()
        covered.withLock { if head.seq > $0.seq { $0 = Position(seq: head.seq, anchor: head) } }
    }

    /// This process committed these events (and handed them to the hub already).
    public func committedLocally(_ events: [StoredEvent]) {
        guard let first = events.first, let last = events.last else { return }
        covered.withLock { covered in
            if first.seq == covered.seq + 1 { covered = Position(seq: last.seq, anchor: last.anchor) }
        }
    }

    /// Looks at the log now rather than at the next tick (after Redis reconnects).
    public func checkNow() {
        wakeRequested.store(true, ordering: .relaxed)
    }

    /// Runs until cancelled: at every tick, or soon after `checkNow`.
    public func run() async {
        let step: Duration = .milliseconds(50)
        var waited: Duration = .zero
        while !Task.isCancelled {
            try? await Task.sleep(for: step)
            waited += step
            guard waited >= interval || wakeRequested.exchange(false, ordering: .relaxed) else { continue }
            waited = .zero
            do {
                try await catchUp()
            } catch {
                // The store is unavailable for now; try again at the next tick.
            }
        }
    }

    /// Hands the hub every event after what it has seen, through the head; or, when the log no
    /// longer has the history of what it has seen, reports the fork and goes on from the head.
    func catchUp() async throws {
        // What was handed on before the head is read: every event of it was committed by then,
        // so a head behind it means a lost history, not a race with a local commit.
        var position = covered.withLock { $0 }
        let head = try await store.head()
        if head.seq < position.anchor.seq || (head.seq == position.anchor.seq && head.check != position.anchor.check) {
            return forked(lost: position.anchor, head: head)
        }
        guard head.seq > position.seq else { return }
        let wanted = hub.subscribedUsers
        let all = hub.followsAll
        while position.seq < head.seq {
            let page: EventPage
            do {
                page = try await store.allEvents(
                    after: store.allCursor(seq: position.seq, anchor: position.anchor), filter: EventFilter(),
                    limit: Self.pageSize)
            } catch let error as StoreError where error.code == .cursorReset {
                return forked(lost: position.anchor, head: head)
            }
            guard let last = page.events.last else { break }
            // Events of the all stream carry no unread count: a user stream's connection takes
            // such an event as a sign to read its stream from the log, which has the counts.
            let relevant = all ? page.events : page.events.filter { wanted.contains($0.userID) }
            if !relevant.isEmpty { hub.publish(relevant) }
            position = Position(seq: last.seq, anchor: last.anchor)
            covered.withLock { if position.seq > $0.seq { $0 = position } }
            if !page.hasMore { break }
        }
    }

    private func forked(lost: CursorAnchor, head: CursorAnchor) {
        store.forgetCachedHistory()
        covered.withLock { $0 = Position(seq: head.seq, anchor: head) }
        let fork = HistoryFork(lost: lost, head: head)
        for listener in forkListeners.withLock({ $0 }) { listener(fork) }
    }
}
