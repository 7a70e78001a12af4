import Foundation
public import Logging
import Synchronization
public import TidingsStore

/// Carries committed events between processes that share a store, over Redis Pub/Sub.
///
/// After each commit this process publishes every event to its user's channel
/// (`tidings:<epoch>:user:<user_id>`) and to `tidings:<epoch>:all`; it subscribes to the
/// channels of the streams its own connections follow (subscribing on the first, unsubscribing
/// after the last). Two threads, each with its own connection, off the event loops: a publisher
/// that pipelines `PUBLISH`es, and a subscriber that `poll`s its socket and a wake-up pipe.
///
/// Pub/Sub is at-most-once: a message may be late, out of order or lost, and nothing is
/// delivered while Redis is down. That only delays delivery: connections skip what they already
/// sent and fill gaps from the log, and the `LogWatcher` reads the log for whatever this
/// process has not seen (at once after a reconnect). Reconnection backs off from 100 ms to 5 s.
public final class RedisBridge: Sendable {
    public struct Status: Sendable, Equatable {
        public var publisherConnected = false
        public var subscriberConnected = false
        public var published = 0
        public var received = 0
        /// Messages not sent because Redis was down or the queue was full.
        public var dropped = 0
        /// Messages received that failed their signature or did not decode.
        public var rejected = 0
        public var reconnects = 0
    }

    /// Events waiting for the publisher beyond which the oldest are dropped (each is two
    /// messages: its user's channel and `all`).
    public static let publishQueueEventsMax = 50_000
    static let backoffMin: Duration = .milliseconds(100)
    static let backoffMax: Duration = .seconds(5)

    public let url: RedisURL
    let prefix: String
    private let key: [UInt8]
    private let hub: Hub
    private let logger: Logger
    private let statusBox = Mutex(Status())
    private let queue = Mutex<(events: [StoredEvent], stopped: Bool)>(([], false))
    private let gate = Mutex<@Sendable () -> Bool>({ true })
    private let publisherWake = DispatchSemaphore(value: 0)
    private let wakePipe: (read: Int32, write: Int32)
    private let reconnected = Mutex<[@Sendable () -> Void]>([])
    private let threadsDone = DispatchGroup()

    public init(url: RedisURL, epoch: String, key: [UInt8], hub: Hub, logger: Logger) {
        self.url = url
        prefix = "tidings:\(epoch)"
        self.key = key
        self.hub = hub
        self.logger = logger
        var descriptors: [Int32] = [0, 0]
        pipe(&descriptors)
        _ = fcntl(descriptors[0], F_SETFL, O_NONBLOCK)
        _ = fcntl(descriptors[1], F_SETFL, O_NONBLOCK)
        wakePipe = (descriptors[0], descriptors[1])
        hub.onChange { [weak self] in self?.wakeSubscriber() }
    }

    deinit {
        close(wakePipe.read)
        close(wakePipe.write)
    }

    public var status: Status { statusBox.withLock { $0 } }

    /// Hands received events to the hub only while `gate` says so (the log's history is not in
    /// doubt); dropped ones reach the streams through the log watcher.
    public func acceptsEvents(when gate: @escaping @Sendable () -> Bool) {
        self.gate.withLock { $0 = gate }
    }

    /// Called after the subscriber (re)connects: messages may have been missed meanwhile.
    public func onReconnect(_ listener: @escaping @Sendable () -> Void) {
        reconnected.withLock { $0.append(listener) }
    }

    public func start() {
        for body in [publisherLoop, subscriberLoop] {
            threadsDone.enter()
            let thread = Thread { [self] in
                body()
                threadsDone.leave()
            }
            thread.name = "tidings-redis"
            thread.start()
        }
    }

    public func stop() {
        queue.withLock { $0.stopped = true }
        publisherWake.signal()
        wakeSubscriber()
        _ = threadsDone.wait(timeout: .now() + 10)
    }

    // MARK: Publishing

    /// Queues committed events for publishing and returns at once: the writer calls this right
    /// after each commit, so encoding and signing happen on the publisher's thread instead.
    public func publish(_ events: [StoredEvent]) {
        guard !events.isEmpty else { return }
        let dropped = queue.withLock { state -> Int in
            state.events += events
            let excess = state.events.count - Self.publishQueueEventsMax
            guard excess > 0 else { return 0 }
            state.events.removeFirst(excess)
            return excess
        }
        if dropped > 0 { statusBox.withLock { $0.dropped += 2 * dropped } }
        publisherWake.signal()
    }

    /// Each event as its two messages, signed: to its user's channel and to `all`.
    private func messages(_ events: [StoredEvent]) -> [(channel: [UInt8], payload: [UInt8])] {
        var messages: [(channel: [UInt8], payload: [UInt8])] = []
        messages.reserveCapacity(events.count * 2)
        let all = Array((prefix + ":all").utf8)
        for event in events {
            let payload = EventMessage.encode(event, key: key)
            messages.append((Array((prefix + ":user:" + event.userID).utf8), payload))
            messages.append((all, payload))
        }
        return messages
    }

    private func publisherLoop() {
        var connection: RedisConnection?
        var backoff = Self.backoffMin
        while true {
            if connection == nil {
                // Connect eagerly, so the metrics show the state before the first publish.
                connection = connect(role: "publisher")
                statusBox.withLock { $0.publisherConnected = connection != nil }
            }
            _ = publisherWake.wait(timeout: .now() + 1)
            let (events, stopped) = queue.withLock { state in
                defer { state.events = [] }
                return (state.events, state.stopped)
            }
            if stopped { return }
            guard !events.isEmpty else { continue }
            let batch = messages(events)
            if connection == nil {
                connection = connect(role: "publisher")
                statusBox.withLock { $0.publisherConnected = connection != nil }
                if connection == nil {
                    statusBox.withLock { $0.dropped += batch.count }
                    Thread.sleep(forTimeInterval: backoff.seconds)
                    backoff = min(backoff * 2, Self.backoffMax)
                    continue
                }
                backoff = Self.backoffMin
            }
            do {
                for message in batch {
                    try connection!.append([Array("PUBLISH".utf8), message.channel, message.payload])
                }
                try connection!.flush()
                for _ in batch { _ = try connection!.nextReply() }
                statusBox.withLock { $0.published += batch.count }
            } catch {
                logger.warning("redis publish failed", metadata: ["error": "\(error)"])
                connection = nil
                statusBox.withLock {
                    $0.publisherConnected = false
                    $0.dropped += batch.count
                }
            }
        }
    }

    // MARK: Subscribing

    private func wakeSubscriber() {
        var byte: UInt8 = 1
        _ = write(wakePipe.write, &byte, 1)
    }

    private func desiredChannels() -> Set<[UInt8]> {
        var channels = Set(hub.subscribedUsers.map { Array((prefix + ":user:" + $0).utf8) })
        if hub.followsAll { channels.insert(Array((prefix + ":all").utf8)) }
        return channels
    }

    private func subscriberLoop() {
        var connection: RedisConnection?
        var subscribed: Set<[UInt8]> = []
        var backoff = Self.backoffMin
        while !queue.withLock({ $0.stopped }) {
            if connection == nil {
                connection = connect(role: "subscriber")
                guard connection != nil else {
                    Thread.sleep(forTimeInterval: backoff.seconds)
                    backoff = min(backoff * 2, Self.backoffMax)
                    continue
                }
                backoff = Self.backoffMin
                subscribed = []
                statusBox.withLock {
                    $0.subscriberConnected = true
                    $0.reconnects += 1
                }
                for listener in reconnected.withLock({ $0 }) { listener() }
            }
            do {
                let desired = desiredChannels()
                let add = desired.subtracting(subscribed)
                let remove = subscribed.subtracting(desired)
                if !add.isEmpty { try connection!.append([Array("SUBSCRIBE".utf8)] + Array(add)) }
                if !remove.isEmpty { try connection!.append([Array("UNSUBSCRIBE".utf8)] + Array(remove)) }
                if !add.isEmpty || !remove.isEmpty { try connection!.flush() }
                subscribed = desired
                var descriptors = [
                    pollfd(fd: connection!.fileDescriptor, events: Int16(POLLIN), revents: 0),
                    pollfd(fd: wakePipe.read, events: Int16(POLLIN), revents: 0),
                ]
                _ = poll(&descriptors, 2, 1_000)
                if descriptors[1].revents != 0 {
                    var drain = [UInt8](repeating: 0, count: 256)
                    while read(wakePipe.read, &drain, drain.count) > 0 {}
                }
                if descriptors[0].revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                    deliver(try connection!.readAvailable())
                }
            } catch {
                logger.warning("redis subscriber lost its connection", metadata: ["error": "\(error)"])
                connection = nil
                statusBox.withLock { $0.subscriberConnected = false }
            }
        }
    }

    private func deliver(_ replies: [RedisReply]) {
        var events: [StoredEvent] = []
        var rejected = 0
        for reply in replies {
            guard case .array(let parts) = reply, parts.count == 3, case .string(let kind) = parts[0],
                kind == Array("message".utf8), case .string(let payload) = parts[2]
            else { continue }
            if let event = EventMessage.decode(payload, key: key) {
                events.append(event)
            } else {
                rejected += 1
            }
        }
        statusBox.withLock {
            $0.received += events.count
            $0.rejected += rejected
        }
        if rejected > 0 {
            logger.warning("dropped redis messages that failed their check", metadata: ["count": "\(rejected)"])
        }
        // The same event may come on a user channel and on the all channel: the hub hands each
        // to its subscriptions, which skip repeats.
        if gate.withLock({ $0 })() { hub.publish(events) }
    }

    private func connect(role: String) -> RedisConnection? {
        do {
            return try RedisConnection(host: url.host, port: url.port, timeout: .seconds(2))
        } catch {
            logger.debug("redis connect failed", metadata: ["role": .string(role), "error": "\(error)"])
            return nil
        }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
