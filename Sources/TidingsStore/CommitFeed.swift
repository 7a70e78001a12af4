import Synchronization

/// Hands every committed event, in seq order, to whoever listens in this process (the live
/// fan-out). Listeners run on the writer's queue right after the commit, so they must only
/// hand the events on, never block.
package final class CommitFeed: Sendable {
    package init() {}

    private let listeners = Mutex<[@Sendable ([StoredEvent], CursorAnchor) -> Void]>([])

    package func add(_ listener: @escaping @Sendable ([StoredEvent], CursorAnchor) -> Void) {
        listeners.withLock { $0.append(listener) }
    }

    /// Forgets every listener. A listener usually holds what holds the store (the fan-out hub,
    /// a server), so a closed store lets go of them, or neither would ever be freed.
    package func removeAll() {
        listeners.withLock { $0.removeAll() }
    }

    /// `events` were committed after `previous`, the log's head before them.
    package func publish(_ events: [StoredEvent], after previous: CursorAnchor) {
        guard !events.isEmpty else { return }
        for listener in listeners.withLock({ $0 }) { listener(events, previous) }
    }
}
