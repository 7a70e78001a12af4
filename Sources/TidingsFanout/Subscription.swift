import Synchronization
public import TidingsStore

/// Which stream a live connection follows.
public enum StreamKey: Hashable, Sendable, CustomStringConvertible {
    case user(String)
    case all

    public var description: String {
        switch self {
        case .user(let id): "user:\(id)"
        case .all: "all"
        }
    }
}

/// A live feed a task awaits: a bounded queue of committed events. When the queue is full the
/// subscription drops what it holds and says so; the reader then reads what it missed from the
/// log at its own pace. Memory stays bounded however slow the reader.
public final class Subscription: LiveSubscriber, Hashable {
    /// What the connection finds when it looks.
    public enum Delivery: Sendable {
        /// Events in stream order (there may be gaps or repeats; the reader fills and skips).
        case events([StoredEvent])
        /// The queue overflowed and was emptied: read the log from the last delivered position.
        case overflowed
        /// Woken without events (for example, an acknowledgement became ready).
        case nudged
        /// The subscription was closed (shutdown).
        case closed(reason: CloseReason)
    }

    public enum CloseReason: Sendable, Equatable {
        case shutdown
    }

    private struct State {
        var queue: [StoredEvent] = []
        var overflowed = false
        var nudged = false
        var closed: CloseReason?
        var waiter: CheckedContinuation<Delivery, Never>?
    }

    public let key: StreamKey
    /// Events the queue holds before it overflows.
    public let capacity: Int
    private let state = Mutex(State())

    init(key: StreamKey, capacity: Int) {
        precondition(capacity > 0, "a subscription holds at least one event")
        self.key = key
        self.capacity = capacity
    }

    /// Called by the hub with the stream's events, in commit order.
    public func receive(_ events: [StoredEvent]) {
        let wake = state.withLock { state -> Wake? in
            guard state.closed == nil, !state.overflowed else { return nil }
            if state.queue.count + events.count > capacity {
                state.queue = []
                state.overflowed = true
            } else {
                state.queue.append(contentsOf: events)
            }
            return Self.take(&state)
        }
        wake?.resume()
    }

    /// Waits until there is something to deliver.
    public func next() async -> Delivery {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Delivery? in
                if let delivery = Self.ready(&state) { return delivery }
                precondition(state.waiter == nil, "one reader per subscription")
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// Clears the overflow: events are queued again from now on.
    public func resumeLive() {
        state.withLock {
            $0.overflowed = false
            $0.queue = []
        }
    }

    /// Wakes the reader without an event.
    public func nudge() {
        let wake = state.withLock { state -> Wake? in
            state.nudged = true
            return Self.take(&state)
        }
        wake?.resume()
    }

    /// Ends the subscription; the reader gets `.closed` next.
    public func close(_ reason: CloseReason) {
        let wake = state.withLock { state -> Wake? in
            if state.closed == nil { state.closed = reason }
            return Self.take(&state)
        }
        wake?.resume()
    }

    /// Events queued now (for tests: nothing is queued once closed or overflowed).
    var queuedCount: Int { state.withLock { $0.queue.count } }
    /// A reader is waiting in `next()` (for tests).
    var hasWaitingReader: Bool { state.withLock { $0.waiter != nil } }

    /// A waiting reader and what to hand it, taken under the lock and resumed outside it.
    private struct Wake {
        var waiter: CheckedContinuation<Delivery, Never>
        var delivery: Delivery
        func resume() { waiter.resume(returning: delivery) }
    }

    private static func take(_ state: inout State) -> Wake? {
        guard let waiter = state.waiter, let delivery = ready(&state) else { return nil }
        state.waiter = nil
        return Wake(waiter: waiter, delivery: delivery)
    }

    private static func ready(_ state: inout State) -> Delivery? {
        if let reason = state.closed { return .closed(reason: reason) }
        if state.overflowed { return .overflowed }
        if !state.queue.isEmpty {
            defer { state.queue = [] }
            return .events(state.queue)
        }
        if state.nudged {
            state.nudged = false
            return .nudged
        }
        return nil
    }

    public static func == (left: Subscription, right: Subscription) -> Bool { left === right }
    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}
