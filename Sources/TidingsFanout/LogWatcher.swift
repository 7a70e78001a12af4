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
    /// The store said the log's history may have changed (its database failed over): nothing
    /// goes to the hub but what a catch-up has read, anchored, from the log, until one has
    /// found the history that was handed on still there (or reported the fork).
    private let doubt = Mutex(Doubt())
    private let wake = WakeSignal()
    private let forkListeners = Mutex<[@Sendable (HistoryFork) -> Void]>([])

    private struct Doubt {
        var inDoubt = false
        /// Counts the doubts raised, so a catch-up begun before one cannot settle it.
        var raised = 0
    }
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

    /// This process committed `events`, which follow `previous` in the log. Returns whether
    /// they may go to the hub now: only when they continue exactly what was handed on, the
    /// previous event's chain hash included. Otherwise (other processes committed in between, or
    /// the log's history changed and the new one grew back to here) a catch-up is asked for,
    /// which reads them from the log with everything before them and finds a fork if there is
    /// one; handed on directly, a new history's event could reach a stream as the next of the
    /// old one.
    public func committedLocally(_ events: [StoredEvent], after previous: CursorAnchor) -> Bool {
        guard let first = events.first, let last = events.last else { return false }
        let inDoubt = doubt.withLock { $0.inDoubt }
        let continues =
            !inDoubt
            && covered.withLock { covered in
                guard first.seq == covered.seq + 1, previous == covered.anchor else { return false }
                covered = Position(seq: last.seq, anchor: last.anchor)
                return true
            }
        if !continues { checkNow() }
        return continues
    }

    /// The store says the log's history may have changed: hold live events back until a
    /// catch-up has checked it.
    public func historyInDoubt() {
        doubt.withLock {
            $0.inDoubt = true
            $0.raised += 1
        }
        checkNow()
    }

    /// Whether events from elsewhere (Redis) may go to the hub as they come.
    public var acceptsLiveEvents: Bool { doubt.withLock { !$0.inDoubt } }

    /// Looks at the log now rather than at the next tick.
    public func checkNow() {
        wake.signal()
    }

    /// Runs until cancelled: at every tick, or as soon as `checkNow` is called.
    public func run() async {
        while !Task.isCancelled {
            await wake.wait(timeout: interval)
            do {
                try await catchUp()
            } catch {
                // The store is unavailable for now; try again at the next tick.
            }
        }
    }

    /// Hands the hub every event after what it has seen, through the head; or, when the log no
    /// longer has the history of what it has seen, reports the fork and goes on from the head.
    /// Every read is after the anchor of what was handed on (its seq and check bytes), so a log
    /// that lost those commits, or holds others at their seqs, refuses it (`cursorReset`): that
    /// is the fork. What was handed on before a read began was committed by then, so a log behind
    /// it is a lost history, not a race with a local commit.
    func catchUp() async throws {
        var position = covered.withLock { $0 }
        let doubtRaised = doubt.withLock { $0.raised }
        // Only the events of this process's streams are made: other processes' users are
        // skipped in the engine, which matters when many nodes each read every commit.
        let wanted: Set<String>? = hub.followsAll ? nil : hub.subscribedUsers
        while true {
            let page: LivePage
            do {
                page = try await store.liveEvents(
                    after: store.allCursor(seq: position.seq, anchor: position.anchor), users: wanted,
                    limit: Self.pageSize)
            } catch let error as StoreError where error.code == .cursorReset {
                return forked(lost: position.anchor, head: try await store.head())
            }
            // The page was read after the anchor of what was handed on: the history holds.
            settleDoubt(raised: doubtRaised)
            guard let through = page.through else { return }
            // Each with its user's unread count where the engine reads them with the page; an
            // event without one makes a user stream's connection read its stream from the log,
            // which has the counts.
            if !page.events.isEmpty { hub.publish(page.events) }
            position = Position(seq: through.seq, anchor: through.anchor)
            covered.withLock { if position.seq > $0.seq { $0 = position } }
            if !page.hasMore { return }
        }
    }

    /// The history handed on was found in the log: live events flow again, unless another
    /// doubt came since the catch-up began.
    private func settleDoubt(raised: Int) {
        doubt.withLock { doubt in
            if doubt.raised == raised { doubt.inDoubt = false }
        }
    }

    private func forked(lost: CursorAnchor, head: CursorAnchor) {
        store.forgetCachedHistory()
        covered.withLock { $0 = Position(seq: head.seq, anchor: head) }
        doubt.withLock { $0.inDoubt = false }
        let fork = HistoryFork(lost: lost, head: head)
        for listener in forkListeners.withLock({ $0 }) { listener(fork) }
    }
}

/// Wakes one waiting task, or the next to wait; a wait also ends at its timeout.
private final class WakeSignal: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    func signal() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.pending = true
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    func wait(timeout: Duration) async {
        let timer = Task {
            try await Task.sleep(for: timeout)
            self.signal()
        }
        defer { timer.cancel() }
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Bool in
                if state.pending {
                    state.pending = false
                    return true
                }
                precondition(state.waiter == nil, "one task waits at a time")
                state.waiter = continuation
                return false
            }
            if ready { continuation.resume() }
        }
    }
}
