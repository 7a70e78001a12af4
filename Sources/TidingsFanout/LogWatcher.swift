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
    private let coveredThrough = Mutex<Int64>(0)
    private let wakeRequested = Atomic<Bool>(false)
    /// Events read per page while catching up.
    static let pageSize = 1_000

    public init(store: any EventStore, hub: Hub, interval: Duration) {
        self.store = store
        self.hub = hub
        self.interval = interval
    }

    /// Starts from the current head (connections read older events from the log themselves).
    public func start() async throws {
        let head = try await store.headSeq()
        coveredThrough.withLock { $0 = max($0, head) }
    }

    /// This process committed these events (and handed them to the hub already).
    public func committedLocally(_ events: [StoredEvent]) {
        guard let first = events.first, let last = events.last else { return }
        coveredThrough.withLock { covered in
            if first.seq == covered + 1 { covered = last.seq }
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

    /// Hands the hub every event after what it has seen, through the head.
    func catchUp() async throws {
        let head = try await store.headSeq()
        var covered = coveredThrough.withLock { $0 }
        guard head > covered else { return }
        let wanted = hub.subscribedUsers
        let all = hub.followsAll
        while covered < head {
            let page = try await store.allEvents(
                after: store.allCursor(seq: covered), filter: EventFilter(), limit: Self.pageSize)
            guard let last = page.events.last else { break }
            // Events of the all stream carry no unread count: a user stream's connection takes
            // such an event as a sign to read its stream from the log, which has the counts.
            let relevant = all ? page.events : page.events.filter { wanted.contains($0.userID) }
            if !relevant.isEmpty { hub.publish(relevant) }
            covered = last.seq
            coveredThrough.withLock { $0 = max($0, covered) }
            if !page.hasMore { break }
        }
    }
}
