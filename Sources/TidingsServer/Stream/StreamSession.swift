import Foundation
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket
import Synchronization
import TidingsFanout
import TidingsStore

/// One WebSocket connection of `GET /v1/stream`: the hello, then welcome, replay after the
/// cursor, `caught_up` (or `reset`), then live events; `read` messages with their acks.
///
/// Lossless hand-over: the session subscribes to live events before it reads the log, replays
/// from the log, then takes live events skipping what it already sent (by position) and filling
/// any gap from the log. A live queue that overflows is dropped; the session then reads the log
/// from its last delivered position at the pace the client reads, and goes live again. Writes
/// that make no progress for the write timeout close the connection with 4429 (the watchdog in
/// `SessionRegistry` checks).
final class StreamSession: Sendable {
    struct Dependencies: Sendable {
        let store: Store
        let hub: Hub
        let verifier: TokenVerifier
        let metrics: ServerMetrics
        let configuration: ServerConfiguration
    }

    private enum Phase {
        case awaitingHello
        case starting
        case streaming
        case closing
    }

    private struct State {
        var phase = Phase.awaitingHello
        var hello: CheckedContinuation<String?, Never>?
        var helloText: String?
        var streamingWaiters: [CheckedContinuation<Bool, Never>] = []
        var subscription: Subscription?
        var expiresAt: Int64?
        var writeStartedAt: ContinuousClock.Instant?
        var lastDelivered: Int64 = 0
        /// Acks waiting for the read events they answer to be delivered: (position, message).
        var pendingAcks: [(Int64, [UInt8])] = []
        var closeCode: UInt16?
    }

    let id = RequestID.make()
    let dependencies: Dependencies
    private let outbound: WebSocketOutboundWriter
    private let headerToken: String?
    private let logger: Logger
    private let state = Mutex(State())
    let helloDeadline: ContinuousClock.Instant

    init(dependencies: Dependencies, outbound: WebSocketOutboundWriter, headerToken: String?, logger: Logger) {
        self.dependencies = dependencies
        self.outbound = outbound
        self.headerToken = headerToken
        var logger = logger
        logger[metadataKey: "connection_id"] = .string(id)
        self.logger = logger
        helloDeadline = .now + dependencies.configuration.helloTimeout
    }

    // MARK: Running

    /// Runs the connection until it closes.
    func run(inbound: WebSocketInboundStream) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.readMessages(inbound) }
            await self.serve()
            group.cancelAll()
        }
        if let subscription = state.withLock({ $0.subscription }) { dependencies.hub.unsubscribe(subscription) }
    }

    /// The sending side: hello checks, welcome, replay, live.
    private func serve() async {
        guard let text = await waitForHello() else { return }
        let stream: StreamSetup
        do {
            stream = try await setUp(Hello(text))
        } catch let fault as StreamFault {
            await close(fault)
            return
        } catch {
            logger.error("stream setup failed", metadata: ["error": "\(error)"])
            await close(code: 1011)
            return
        }
        do {
            try await stream.run(self)
        } catch let fault as StreamFault {
            await close(fault)
        } catch is CancellationError {
        } catch {
            if state.withLock({ $0.phase }) != .closing {
                logger.error("stream failed", metadata: ["error": "\(error)"])
                await close(code: 1011)
            }
        }
    }

    // MARK: Hello

    private func waitForHello() async -> String? {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> String?? in
                if state.phase == .closing { return .some(nil) }
                if let text = state.helloText { return .some(text) }
                state.hello = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    private func receivedHello(_ text: String) {
        let waiter = state.withLock { state -> CheckedContinuation<String?, Never>? in
            state.phase = .starting
            state.helloText = text
            defer { state.hello = nil }
            return state.hello
        }
        waiter?.resume(returning: text)
    }

    /// Token (4401), then permission (4403), then shape and cursor (4400).
    private func setUp(_ hello: Hello) async throws -> StreamSetup {
        let token: String
        switch (hello.token, headerToken) {
        case (let given?, let header?):
            guard given == header else { throw StreamFault.unauthorized }
            token = given
        case (let given?, nil): token = given
        case (nil, let header?): token = header
        case (nil, nil): throw StreamFault.unauthorized
        }
        let principal: Principal
        do {
            principal = try dependencies.verifier.verify(token)
        } catch {
            logger.debug("token refused", metadata: ["reason": .string(error.reason)])
            throw StreamFault.unauthorized
        }
        if principal.role == .publisher { throw StreamFault.forbidden("publishers may not open streams") }
        let wantsAll = hello.stream == "all"
        if wantsAll {
            guard principal.role.mayAudit else {
                throw StreamFault.forbidden("only auditors and admins read the all stream")
            }
        } else if let user = hello.userID, user != principal.subject, !principal.role.mayAudit {
            throw StreamFault.forbidden("this token may not read another user's stream")
        }
        if let problem = hello.shapeProblem { throw StreamFault.badRequest(problem) }
        if wantsAll && hello.userID != nil { throw StreamFault.badRequest("the all stream takes no user_id") }
        let key: StreamKey = wantsAll ? .all : .user(hello.userID ?? principal.subject)
        if case .user(let id) = key, !Identifier.isValid(id) {
            throw StreamFault.badRequest("the token's subject is not a valid user id; name user_id")
        }
        state.withLock { $0.expiresAt = principal.expiresAt }
        return StreamSetup(principal: principal, key: key, cursor: hello.cursor, epoch: dependencies.store.epoch)
    }

    // MARK: Reading client messages

    private func readMessages(_ inbound: WebSocketInboundStream) async {
        do {
            for try await message in inbound.messages(maxSize: dependencies.configuration.webSocketMessageBytesMax) {
                guard case .text(let text) = message else {
                    await close(StreamFault.badRequest("messages must be JSON text"))
                    return
                }
                let phase = state.withLock { $0.phase }
                if phase == .closing { return }
                if phase == .awaitingHello {
                    receivedHello(text)
                    continue
                }
                // Messages sent before the welcome are handled after it, in order.
                guard await waitUntilStreaming() else { return }
                do {
                    try await handle(ClientMessage(text))
                } catch let fault as StreamFault {
                    await close(fault)
                    return
                }
            }
        } catch {
            logger.debug("inbound ended", metadata: ["error": "\(error)"])
        }
        // The client went away: stop sending.
        finish()
    }

    private func waitUntilStreaming() async -> Bool {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Bool? in
                switch state.phase {
                case .streaming: return true
                case .closing: return false
                default:
                    state.streamingWaiters.append(continuation)
                    return nil
                }
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    func startedStreaming() {
        let waiters = state.withLock { state -> [CheckedContinuation<Bool, Never>] in
            if state.phase != .closing { state.phase = .streaming }
            defer { state.streamingWaiters = [] }
            return state.streamingWaiters
        }
        for waiter in waiters { waiter.resume(returning: true) }
    }

    private func handle(_ message: ClientMessage) async throws {
        guard case .read(let ref, let command) = message else { return }
        guard let setup = currentSetup, case .user(let user) = setup.key,
            setup.principal.role == .admin || (setup.principal.role == .user && setup.principal.subject == user)
        else {
            var unread: Int64?
            if let setup = currentSetup, case .user(let user) = setup.key {
                unread = try? await dependencies.store.userHead(userID: user).unreadCount
            }
            enqueueAck(ServerMessage.ack(ref: ref, status: "forbidden", unreadCount: unread), after: 0)
            return
        }
        let outcome: ReadOutcome
        do {
            switch command {
            case .notifications(let ids):
                outcome = try await dependencies.store.markRead(userID: user, notificationIDs: ids)
            case .all(let upTo): outcome = try await dependencies.store.markAllRead(userID: user, upToSeq: upTo)
            }
        } catch let error as StoreError where error.code == .badRequest || error.code == .payloadTooLarge {
            throw StreamFault.badRequest(error.message)
        }
        let status = outcome.read.isEmpty ? "noop" : "ok"
        enqueueAck(
            ServerMessage.ack(ref: ref, status: status, unreadCount: outcome.unreadCount), after: outcome.headStreamSeq)
    }

    private let setupBox = Mutex<StreamSetup?>(nil)
    var currentSetup: StreamSetup? { setupBox.withLock { $0 } }
    func remember(_ setup: StreamSetup) { setupBox.withLock { $0 = setup } }

    /// Queues an ack to be sent once everything up to `position` has been delivered.
    private func enqueueAck(_ message: [UInt8], after position: Int64) {
        let subscription = state.withLock { state -> Subscription? in
            state.pendingAcks.append((position, message))
            return state.subscription
        }
        subscription?.nudge()
    }

    // MARK: Sending

    func attach(_ subscription: Subscription) {
        state.withLock { $0.subscription = subscription }
    }

    /// Sends one text frame, timing it for the watchdog.
    func send(_ bytes: [UInt8]) async throws {
        state.withLock { $0.writeStartedAt = .now }
        defer { state.withLock { $0.writeStartedAt = nil } }
        let frame = WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(bytes: bytes))
        try await outbound.write(.custom(frame))
    }

    func delivered(position: Int64) async throws {
        let ready = state.withLock { state -> [[UInt8]] in
            state.lastDelivered = max(state.lastDelivered, position)
            let last = state.lastDelivered
            let ready = state.pendingAcks.filter { $0.0 <= last }.map(\.1)
            state.pendingAcks.removeAll { $0.0 <= last }
            return ready
        }
        for ack in ready { try await send(ack) }
    }

    // MARK: Closing

    /// Ends the connection for a client fault: `error` message, then close with its code.
    func close(_ fault: StreamFault) async {
        guard beginClosing(code: fault.closeCode) else { return }
        try? await send(ServerMessage.error(fault))
        try? await outbound.close(.init(codeNumber: Int(fault.closeCode)), reason: fault.message)
    }

    func close(code: UInt16) async {
        guard beginClosing(code: code) else { return }
        try? await outbound.close(.init(codeNumber: Int(code)), reason: nil)
    }

    /// Closes from outside the sending task (watchdog, shutdown): wakes the sender, and sends
    /// the close frame now in case the sender is stuck in a write to a client that reads nothing.
    func closeFromOutside(_ fault: StreamFault?, code: UInt16) {
        guard beginClosing(code: code) else { return }
        let outbound = self.outbound
        Task {
            if let fault { try? await self.send(ServerMessage.error(fault)) }
            try? await outbound.close(.init(codeNumber: Int(code)), reason: fault?.message)
        }
    }

    /// Stops the sender when the client has gone.
    private func finish() {
        _ = beginClosing(code: nil)
    }

    /// Marks the session closing; false if it already was.
    private func beginClosing(code: UInt16?) -> Bool {
        let (first, subscription, hello, waiters) = state.withLock {
            state -> (Bool, Subscription?, CheckedContinuation<String?, Never>?, [CheckedContinuation<Bool, Never>]) in
            guard state.phase != .closing else { return (false, nil, nil, []) }
            state.phase = .closing
            state.closeCode = code
            defer {
                state.hello = nil
                state.streamingWaiters = []
            }
            return (true, state.subscription, state.hello, state.streamingWaiters)
        }
        guard first else { return false }
        hello?.resume(returning: nil)
        for waiter in waiters { waiter.resume(returning: false) }
        subscription?.close(.requested(code: code ?? 1000, errorCode: nil, message: nil))
        if let code { dependencies.metrics.closed(code: code) }
        return true
    }

    // MARK: Watchdog

    /// What the watchdog should do with this session now.
    func check(now: ContinuousClock.Instant, wallSeconds: Int64) {
        let (phase, expiresAt, writeStartedAt) = state.withLock { ($0.phase, $0.expiresAt, $0.writeStartedAt) }
        switch phase {
        case .closing: return
        case .awaitingHello where now >= helloDeadline:
            closeFromOutside(.timeout, code: 4408)
        default:
            if let started = writeStartedAt, now - started >= dependencies.configuration.writeTimeout {
                logger.info("closing a connection that stopped reading")
                closeFromOutside(nil, code: 4429)
            } else if let expiresAt, wallSeconds >= expiresAt + TokenVerifier.leewaySeconds {
                closeFromOutside(.expired, code: 4401)
            }
        }
    }

    /// Shutdown: close with 1001.
    func shutDown() {
        closeFromOutside(nil, code: 1001)
    }

    var isClosing: Bool { state.withLock { $0.phase == .closing } }
    var lastDelivered: Int64 { state.withLock { $0.lastDelivered } }
}
