import Synchronization
public import TidingsStore

/// What the hub hands a stream's committed events to: a connection's channel, or a
/// `Subscription` that a task awaits. `receive` is called from the committing thread, the log
/// watcher or the Redis bridge, and must only queue or pass the events on: never block.
public protocol LiveSubscriber: AnyObject, Sendable {
    var key: StreamKey { get }
    /// Committed events of `key`'s stream, in commit order (there may be gaps or repeats: the
    /// connection skips what it sent and fills gaps from the log).
    func receive(_ events: [StoredEvent])
}

/// Live fan-out within one process: every committed event goes to the subscribers of its
/// user's stream and of the `all` stream. Publishing never blocks: each subscriber bounds what
/// it holds and falls back to the log when it is too slow.
public final class Hub: Sendable {
    private struct Registry {
        /// Most users have one or two connections: a short array each.
        var users: [String: [any LiveSubscriber]] = [:]
        var all: [any LiveSubscriber] = []
        var count = 0
    }

    private let registry = Mutex(Registry())
    private let changeListeners = Mutex<[@Sendable () -> Void]>([])
    /// Events one `Subscription` holds before it overflows.
    public let subscriptionCapacity: Int

    public init(subscriptionCapacity: Int = 256) {
        self.subscriptionCapacity = subscriptionCapacity
    }

    /// Starts following a stream with a queue a task awaits. Subscribe before reading the log,
    /// so nothing committed in between is missed (the reader skips what it already sent).
    public func subscribe(_ key: StreamKey) -> Subscription {
        let subscription = Subscription(key: key, capacity: subscriptionCapacity)
        add(subscription)
        return subscription
    }

    /// Starts handing `subscriber` its stream's events.
    public func add(_ subscriber: any LiveSubscriber) {
        registry.withLock { registry in
            switch subscriber.key {
            case .user(let id): registry.users[id, default: []].append(subscriber)
            case .all: registry.all.append(subscriber)
            }
            registry.count += 1
        }
        notifyChange()
    }

    /// Stops handing `subscriber` events; nothing when it was not added.
    public func remove(_ subscriber: any LiveSubscriber) {
        let removed = registry.withLock { registry -> Bool in
            switch subscriber.key {
            case .user(let id):
                guard var list = registry.users[id], let index = list.firstIndex(where: { $0 === subscriber }) else {
                    return false
                }
                list.remove(at: index)
                registry.users[id] = list.isEmpty ? nil : list
            case .all:
                guard let index = registry.all.firstIndex(where: { $0 === subscriber }) else { return false }
                registry.all.remove(at: index)
            }
            registry.count -= 1
            return true
        }
        if removed { notifyChange() }
    }

    public func unsubscribe(_ subscription: Subscription) {
        remove(subscription)
    }

    /// Calls `listener` whenever the set of followed streams may have changed (a Redis bridge
    /// then subscribes or unsubscribes channels).
    public func onChange(_ listener: @escaping @Sendable () -> Void) {
        changeListeners.withLock { $0.append(listener) }
    }

    private func notifyChange() {
        for listener in changeListeners.withLock({ $0 }) { listener() }
    }

    /// Hands committed events to their subscribers: each gets its stream's events of the batch
    /// in one call.
    public func publish(_ events: [StoredEvent]) {
        guard !events.isEmpty else { return }
        var deliveries: [(any LiveSubscriber, [StoredEvent])] = []
        registry.withLock { registry in
            for subscriber in registry.all { deliveries.append((subscriber, events)) }
            guard !registry.users.isEmpty else { return }
            if events.count == 1 {
                for subscriber in registry.users[events[0].userID] ?? [] { deliveries.append((subscriber, events)) }
                return
            }
            var byUser: [String: [StoredEvent]] = [:]
            for event in events where registry.users[event.userID] != nil {
                byUser[event.userID, default: []].append(event)
            }
            for (user, userEvents) in byUser {
                for subscriber in registry.users[user] ?? [] { deliveries.append((subscriber, userEvents)) }
            }
        }
        for (subscriber, subscriberEvents) in deliveries { subscriber.receive(subscriberEvents) }
    }

    /// Subscribers currently added.
    public var subscriptionCount: Int { registry.withLock { $0.count } }

    /// Users with at least one subscriber in this process (a Redis bridge subscribes to their
    /// channels).
    public var subscribedUsers: Set<String> { registry.withLock { Set($0.users.keys) } }

    /// Whether anyone here follows the `all` stream.
    public var followsAll: Bool { registry.withLock { !$0.all.isEmpty } }
}
