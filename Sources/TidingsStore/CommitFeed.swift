import Synchronization

/// Hands every committed event, in seq order, to whoever listens in this process (the live
/// fan-out). Listeners run on the writer's queue right after the commit, so they must only
/// hand the events on, never block.
final class CommitFeed: Sendable {
    private let listeners = Mutex<[@Sendable ([StoredEvent]) -> Void]>([])

    func add(_ listener: @escaping @Sendable ([StoredEvent]) -> Void) {
        listeners.withLock { $0.append(listener) }
    }

    /// Forgets every listener. A listener usually holds what holds the store (the fan-out hub,
    /// a server), so a closed store lets go of them, or neither would ever be freed.
    func removeAll() {
        listeners.withLock { $0.removeAll() }
    }

    func publish(_ events: [StoredEvent]) {
        guard !events.isEmpty else { return }
        for listener in listeners.withLock({ $0 }) { listener(events) }
    }
}

extension Store {
    /// Calls `listener` with the events of every transaction this process commits, in seq order,
    /// each with its user's unread count after it. Runs on the writer's queue: hand the events on
    /// and return. Events other processes append do not pass here.
    public func onCommit(_ listener: @escaping @Sendable ([StoredEvent]) -> Void) {
        context.commitFeed.add(listener)
    }
}
