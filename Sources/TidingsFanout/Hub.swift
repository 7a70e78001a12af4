import Synchronization
public import TidingsStore

/// Live fan-out within one process: every committed event goes to the subscriptions of its
/// user's stream and of the `all` stream. Publishing never blocks: a full subscription drops
/// its queue and its connection catches up from the log.
public final class Hub: Sendable {
    private struct Registry {
        var users: [String: Set<Subscription>] = [:]
        var all: Set<Subscription> = []
        var count = 0
    }

    private let registry = Mutex(Registry())
    private let changeListeners = Mutex<[@Sendable () -> Void]>([])
    /// Events one subscription holds before it overflows.
    public let subscriptionCapacity: Int

    public init(subscriptionCapacity: Int = 256) {
        self.subscriptionCapacity = subscriptionCapacity
    }

    /// Starts following a stream. Subscribe before reading the log, so nothing committed in
    /// between is missed (the reader skips what it already sent).
    public func subscribe(_ key: StreamKey) -> Subscription {
        let subscription = Subscription(key: key, capacity: subscriptionCapacity)
        registry.withLock { registry in
            switch key {
            case .user(let id): registry.users[id, default: []].insert(subscription)
            case .all: registry.all.insert(subscription)
            }
            registry.count += 1
        }
        notifyChange()
        return subscription
    }

    public func unsubscribe(_ subscription: Subscription) {
        registry.withLock { registry in
            let removed: Subscription?
            switch subscription.key {
            case .user(let id):
                removed = registry.users[id]?.remove(subscription)
                if registry.users[id]?.isEmpty == true { registry.users[id] = nil }
            case .all:
                removed = registry.all.remove(subscription)
            }
            if removed != nil { registry.count -= 1 }
        }
        notifyChange()
    }

    /// Calls `listener` whenever the set of followed streams may have changed (a Redis bridge
    /// then subscribes or unsubscribes channels).
    public func onChange(_ listener: @escaping @Sendable () -> Void) {
        changeListeners.withLock { $0.append(listener) }
    }

    private func notifyChange() {
        for listener in changeListeners.withLock({ $0 }) { listener() }
    }

    /// Hands committed events to their subscriptions.
    public func publish(_ events: [StoredEvent]) {
        guard !events.isEmpty else { return }
        var targets: [(StoredEvent, [Subscription])] = []
        targets.reserveCapacity(events.count)
        registry.withLock { registry in
            for event in events {
                var subscribers = Array(registry.all)
                if let users = registry.users[event.userID] { subscribers += users }
                if !subscribers.isEmpty { targets.append((event, subscribers)) }
            }
        }
        for (event, subscribers) in targets {
            for subscription in subscribers { subscription.offer(event) }
        }
    }

    /// Subscriptions currently open.
    public var subscriptionCount: Int { registry.withLock { $0.count } }

    /// Users with at least one subscription in this process (a Redis bridge subscribes to their
    /// channels).
    public var subscribedUsers: Set<String> { registry.withLock { Set($0.users.keys) } }

    /// Whether anyone here follows the `all` stream.
    public var followsAll: Bool { registry.withLock { !$0.all.isEmpty } }

    /// Closes every subscription (shutdown).
    public func closeAll(_ reason: Subscription.CloseReason) {
        let all = registry.withLock { registry in
            registry.all.union(registry.users.values.flatMap { $0 })
        }
        for subscription in all { subscription.close(reason) }
    }
}
