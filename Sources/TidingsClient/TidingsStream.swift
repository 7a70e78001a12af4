import Foundation
import HummingbirdWSClient
import Logging
import NIOWebSocket
import Synchronization

/// One stream of `GET /v1/stream` as an `AsyncSequence`, kept open across drops, restarts,
/// resets and token expiry, yielding each event once and in order (docs/CLIENTS.md).
///
/// A reader task receives the connection's messages into a bounded queue; iterating hands them
/// to the application. An event counts as processed when the loop asks for the next item, and
/// only then is its cursor saved, so a reconnect resumes from the last processed event: the
/// server replays what came after it, and an event at or before the last one handed out is
/// dropped. A stream that cannot go on (4403, 4400, a refused fresh token) throws TidingsError.
public final class TidingsStream: AsyncSequence, Sendable {
    public typealias Element = Item

    /// Which stream: a user's (nil: the token's subject) or `all`.
    public enum Kind: Sendable, Hashable {
        case user(String?)
        case all
    }

    /// What the loop gets.
    public enum Item: Sendable, Hashable {
        /// One event with the user's counts after it (user streams).
        case event(Envelope, Counts?)
        /// The stream goes on from another store's head (a restore): reload what you show.
        case reset(reason: String, head: String, counts: Counts?)
    }

    /// What the stream is doing, as `onState` is told.
    public enum State: Sendable, Hashable {
        case connecting
        case replaying
        case live(replayed: Int)
        case reconnecting(delay: Duration, reason: String, attempt: Int)
        case stopped(TidingsError?)
    }

    private enum Queued: Sendable {
        case item(generation: Int, Item)
        case caughtUp(generation: Int, cursor: String, counts: Counts?, replayed: Int)
        case stopped(TidingsError)
    }

    private struct Shared {
        var started = false
        var closed = false
        var generation = 0
        var cursor: String?
        var loaded = false
        var lastPosition: Int64?
        var handed: Item?
        var counts: Counts?
        var epoch: String?
        var state = State.stopped(nil)
        var writer: WebSocketOutboundWriter?
        var pending: [String: CheckedContinuation<Ack, any Error>] = [:]
        var nextRef = 1
        var freshToken = false
        var renew = false
        var runner: Task<Void, Never>?
    }

    private let client: TidingsClient
    private let cursorStore: any CursorStore
    private let kind: Kind
    private let refreshBeforeExpiry: Duration
    private let queue = BoundedQueue<Queued>(capacity: 1000)
    private let shared = Mutex(Shared())
    private let onStateHandler = Mutex<(@Sendable (State) -> Void)?>(nil)

    init(client: TidingsClient, cursorStore: any CursorStore, kind: Kind, refreshBeforeExpiry: Duration) {
        self.client = client
        self.cursorStore = cursorStore
        self.kind = kind
        self.refreshBeforeExpiry = refreshBeforeExpiry
    }

    /// Calls `handler` with every state from now on.
    @discardableResult
    public func onState(_ handler: @escaping @Sendable (State) -> Void) -> TidingsStream {
        onStateHandler.withLock { $0 = handler }
        return self
    }

    public var state: State { shared.withLock { $0.state } }
    /// The cursor of the last event the application processed.
    public var cursor: String? { shared.withLock { $0.cursor } }
    /// The user's counts as of that cursor (user streams).
    public var counts: Counts? { shared.withLock { $0.counts } }
    /// The store's epoch as the last `welcome` named it.
    public var epoch: String? { shared.withLock { $0.epoch } }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let stream: TidingsStream
        public mutating func next() async throws -> Item? { try await stream.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(stream: self) }

    /// Stops the stream; the last item handed out stays unsaved.
    public func stop() {
        let (runner, writer, pending) = shared.withLock { shared in
            shared.closed = true
            defer { shared.pending = [:] }
            return (shared.runner, shared.writer, shared.pending)
        }
        runner?.cancel()
        queue.finish()
        for continuation in pending.values {
            continuation.resume(throwing: TidingsError("closed", "the stream stopped before the ack"))
        }
        if let writer { Task { try? await writer.close(.normalClosure, reason: nil) } }
        setState(.stopped(nil))
    }

    /// Changes the stream user's notifications over the stream (the `mark` message); returns the
    /// ack, received after the events it caused.
    public func mark(_ change: StateChange) async throws -> Ack {
        var message = try JSONSerialization.jsonObject(with: JSONEncoder().encode(change)) as? [String: Any] ?? [:]
        message["type"] = "mark"
        return try await send(message)
    }

    /// Marks these notifications read over the stream.
    public func read(_ notificationIDs: [String]) async throws -> Ack {
        try await send(["type": "read", "notification_ids": notificationIDs])
    }

    // MARK: Iterating

    private func next() async throws -> Item? {
        try commitHanded()
        let start: Bool = try shared.withLock { shared in
            if !shared.loaded {
                shared.cursor = try cursorStore.load()
                shared.loaded = true
            }
            if shared.started || shared.closed { return false }
            shared.started = true
            return true
        }
        if start {
            let runner = Task { await self.run() }
            shared.withLock { $0.runner = runner }
        }
        while let queued = await queue.take() {
            switch queued {
            case .stopped(let error):
                shared.withLock { $0.closed = true }
                throw error
            case .caughtUp(let generation, let cursor, let counts, let replayed):
                guard generation == shared.withLock({ $0.generation }) else { continue }
                try save(cursor, counts)
                setState(.live(replayed: replayed))
            case .item(let generation, let item):
                let handed: Bool = shared.withLock { shared in
                    guard generation == shared.generation else { return false }
                    switch item {
                    case .reset:
                        shared.lastPosition = nil
                    case .event(let envelope, _):
                        let position = kind == .all ? envelope.seq : envelope.streamSeq ?? envelope.seq
                        if let last = shared.lastPosition, position <= last { return false }
                        shared.lastPosition = position
                    }
                    shared.handed = item
                    return true
                }
                if handed { return item }
            }
        }
        return nil
    }

    private func commitHanded() throws {
        switch shared.withLock({ shared -> Item? in
            defer { shared.handed = nil }
            return shared.handed
        }) {
        case .event(let envelope, let counts): try save(envelope.cursor, counts)
        case .reset(_, let head, let counts): try save(head, counts)
        case nil: break
        }
    }

    private func save(_ cursor: String, _ counts: Counts?) throws {
        try cursorStore.save(cursor)
        shared.withLock { shared in
            shared.cursor = cursor
            if let counts { shared.counts = counts }
        }
    }

    private func setState(_ state: State) {
        shared.withLock { $0.state = state }
        onStateHandler.withLock { $0 }?(state)
    }

    // MARK: The connection

    private struct Closed {
        var code = 1006
        var reason = ""
        var opened = false
        var error: (code: String, message: String)?
    }

    private func run() async {
        var attempt = 0
        var quickRetry = true
        var logger = Logger(label: "tidings.client")
        logger.logLevel = .critical
        while !Task.isCancelled && !shared.withLock({ $0.closed }) {
            let generation = shared.withLock { shared in
                shared.generation += 1
                return shared.generation
            }
            setState(.connecting)
            var closed = Closed()
            // What the connection's handler learns, for the decision after it ends.
            let replayed = Mutex(0)
            let serverError = Mutex<(code: String, message: String)?>(nil)
            let progressed = Mutex(false)
            do {
                let token = try await client.token(fresh: shared.withLock { $0.freshToken })
                let hello = try helloText(token: token)
                let frame = try await WebSocketClient.connect(
                    url: client.streamURL, configuration: WebSocketClientConfiguration(maxFrameSize: 1 << 24),
                    logger: logger
                ) { inbound, outbound, _ in
                    self.shared.withLock { $0.writer = outbound }
                    try await outbound.write(.text(hello))
                    let renewal = Task { await self.renewBeforeExpiry(token: token, writer: outbound) }
                    defer { renewal.cancel() }
                    for try await message in inbound.messages(maxSize: 1 << 24) {
                        guard case .text(let text) = message,
                            let object = try? JSONDecoder().decode([String: TidingsJSON].self, from: Data(text.utf8))
                        else { continue }
                        switch object["type"]?.stringValue {
                        case "error":
                            serverError.withLock {
                                $0 = (object["code"]?.stringValue ?? "", object["message"]?.stringValue ?? "")
                            }
                        case "welcome":
                            self.shared.withLock { shared in
                                shared.epoch = object["epoch"]?.stringValue
                                shared.freshToken = false
                            }
                            self.setState(.replaying)
                        case "event":
                            let envelope = try JSONDecoder().decode(
                                Envelope.self, from: JSONEncoder().encode(object["event"] ?? .null))
                            if case .replaying = self.state { replayed.withLock { $0 += 1 } }
                            await self.queue.put(.item(generation: generation, .event(envelope, Self.counts(object))))
                        case "caught_up":
                            progressed.withLock { $0 = true }
                            await self.queue.put(
                                .caughtUp(
                                    generation: generation, cursor: object["cursor"]?.stringValue ?? "",
                                    counts: Self.counts(object), replayed: replayed.withLock { $0 }))
                        case "reset":
                            progressed.withLock { $0 = true }
                            let head = object["head"]?.stringValue ?? ""
                            let counts = Self.counts(object)
                            await self.queue.put(
                                .item(
                                    generation: generation,
                                    .reset(reason: object["reason"]?.stringValue ?? "", head: head, counts: counts)))
                            await self.queue.put(
                                .caughtUp(generation: generation, cursor: head, counts: counts, replayed: 0))
                        case "ack":
                            self.answer(object)
                        default:
                            break
                        }
                    }
                }
                closed.opened = true
                if let frame { closed.code = Int(UInt16(webSocketErrorCode: frame.closeCode)) }
                closed.reason = frame?.reason ?? ""
            } catch let error as TidingsError {
                closed.reason = "no token (\(error))"
            } catch {
                closed.reason = "the connection could not be opened (\(error))"
            }
            closed.error = serverError.withLock { $0 }
            if closed.opened { quickRetry = true }
            if progressed.withLock({ $0 }) { attempt = 0 }
            let pending = shared.withLock { shared in
                shared.writer = nil
                defer { shared.pending = [:] }
                return shared.pending
            }
            for continuation in pending.values {
                continuation.resume(
                    throwing: TidingsError(
                        "closed", "the connection closed before the ack; the change may or may not have been made"))
            }
            if Task.isCancelled || shared.withLock({ $0.closed }) { return }
            let reason = closed.error.map { "\($0.code): \($0.message)" } ?? closed.reason
            let (renewing, fresh) = shared.withLock { shared in
                defer { shared.renew = false }
                return (shared.renew, shared.freshToken)
            }
            if renewing {
                shared.withLock { $0.freshToken = true }
                continue
            }
            if closed.code == 4401 {
                if fresh {
                    await stop(
                        with: TidingsError(
                            "unauthorized", "the server refused a fresh token too (\(reason))", status: 401,
                            closeCode: 4401))
                    return
                }
                shared.withLock { $0.freshToken = true }
                continue
            }
            if closed.code == 4403 || closed.code == 4400 {
                let code = closed.error?.code ?? (closed.code == 4403 ? "forbidden" : "bad_request")
                await stop(
                    with: TidingsError(
                        code, closed.error?.message ?? reason, status: closed.code - 4000, closeCode: closed.code))
                return
            }
            if !closed.opened && quickRetry {
                // A handshake refused on a reused connection succeeds at once on a new one.
                quickRetry = false
                continue
            }
            let delay = Backoff.delay(attempt)
            setState(.reconnecting(delay: delay, reason: reason, attempt: attempt))
            attempt += 1
            try? await Task.sleep(for: delay)
        }
    }

    private func helloText(token: String) throws -> String {
        var hello: [String: TidingsJSON] = ["type": "hello", "token": .string(token)]
        switch kind {
        case .all: hello["stream"] = "all"
        case .user(let user):
            hello["stream"] = "user"
            if let user { hello["user_id"] = .string(user) }
        }
        hello["cursor"] = shared.withLock { $0.cursor }.map(TidingsJSON.string) ?? .null
        return String(decoding: try JSONEncoder().encode(hello), as: UTF8.self)
    }

    private static func counts(_ message: [String: TidingsJSON]) -> Counts? {
        guard case .number(let unread) = message["unread_count"], case .number(let unseen) = message["unseen_count"],
            case .number(let archived) = message["archived_count"]
        else { return nil }
        return Counts(unread: Int64(unread), unseen: Int64(unseen), archived: Int64(archived))
    }

    /// Renews the connection with a new token shortly before this one expires.
    private func renewBeforeExpiry(token: String, writer: WebSocketOutboundWriter) async {
        guard refreshBeforeExpiry > .zero, client.refreshesTokens, let expiry = tokenExpiry(token) else { return }
        let left = expiry.timeIntervalSinceNow
        let lead = Swift.min(Double(refreshBeforeExpiry.components.seconds), left / 2)
        do {
            try await Task.sleep(for: .milliseconds(Int(Swift.max(1, left - lead) * 1000)))
        } catch {
            return
        }
        shared.withLock { $0.renew = true }
        try? await writer.close(.normalClosure, reason: nil)
    }

    private func stop(with error: TidingsError) async {
        setState(.stopped(error))
        await queue.put(.stopped(error))
    }

    // MARK: Acks

    private func send(_ message: [String: Any]) async throws -> Ack {
        let (writer, ref): (WebSocketOutboundWriter?, String) = shared.withLock { shared in
            var live = false
            switch shared.state {
            case .replaying, .live: live = true
            default: live = false
            }
            guard live, let writer = shared.writer else { return (nil, "") }
            defer { shared.nextRef += 1 }
            return (writer, "c\(shared.nextRef)")
        }
        guard let writer else {
            throw TidingsError("not_connected", "the stream is not connected; try again when it is live")
        }
        var message = message
        message["ref"] = ref
        let text = String(decoding: try JSONSerialization.data(withJSONObject: message), as: UTF8.self)
        let timeout = client.timeout
        let timer = Task {
            try await Task.sleep(for: timeout)
            let continuation = self.shared.withLock { $0.pending.removeValue(forKey: ref) }
            continuation?.resume(
                throwing: TidingsError("timeout", "no ack in time; the change may or may not have been made"))
        }
        defer { timer.cancel() }
        return try await withCheckedThrowingContinuation { continuation in
            shared.withLock { $0.pending[ref] = continuation }
            Task {
                do {
                    try await writer.write(.text(text))
                } catch {
                    let pending = self.shared.withLock { $0.pending.removeValue(forKey: ref) }
                    pending?.resume(throwing: TidingsError("closed", "the stream closed before the change was sent"))
                }
            }
        }
    }

    private func answer(_ message: [String: TidingsJSON]) {
        guard let ref = message["ref"]?.stringValue,
            let continuation = shared.withLock({ $0.pending.removeValue(forKey: ref) })
        else { return }
        if message["status"]?.stringValue == "forbidden" {
            continuation.resume(
                throwing: TidingsError("forbidden", "this stream may not change these notifications", status: 403))
        } else {
            continuation.resume(
                returning: Ack(status: message["status"]?.stringValue ?? "", counts: Self.counts(message)))
        }
    }
}
