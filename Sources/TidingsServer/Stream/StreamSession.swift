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
        let store: any EventStore
        let hub: Hub
        let verifier: TokenVerifier
        let metrics: ServerMetrics
        let configuration: ServerConfiguration
        let sessions: SessionRegistry
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
        /// The close the sender owes: its code, and the fault to report first.
        var pendingClose: (code: UInt16, fault: StreamFault?)?
        var closeSent = false
        /// The subject whose stream count this connection holds.
        var countedSubject: String?
    }

    /// How long the server waits for a client to answer its close frame before it drops the
    /// connection (the WebSocket library's close timeout is set to the same).
    static let closeTimeout = Duration.seconds(5)

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
            // The close frame may still wait behind queued events (a client that stopped reading).
            // Cancelling the reader would end the inbound stream for good, and the WebSocket
            // library would then close the channel at once, dropping what was queued, close frame
            // included. So the reader runs until the client answers the close (which ends the
            // inbound stream) or the close timeout passes.
            group.addTask { try? await Task.sleep(for: Self.closeTimeout) }
            _ = await group.next()
            group.cancelAll()
        }
        let (subscription, subject) = state.withLock { ($0.subscription, $0.countedSubject) }
        if let subscription { dependencies.hub.unsubscribe(subscription) }
        if let subject { dependencies.sessions.releaseStream(subject: subject) }
    }

    /// The sending side: hello checks, welcome, replay, live.
    private func serve() async {
        guard let text = await waitForHello() else {
            await sendPendingClose()
            return
        }
        do {
            try await setUp(Hello(text)).run(self)
        } catch let fault as StreamFault {
            requestClose(code: fault.closeCode, fault: fault)
        } catch is CancellationError {
        } catch {
            if !isClosing {
                logger.error("stream failed", metadata: ["error": "\(error)"])
                requestClose(code: 1011, fault: nil)
            }
        }
        await sendPendingClose()
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
        let limit = dependencies.configuration.streamsPerSubjectMax
        guard dependencies.sessions.claimStream(subject: principal.subject, limit: limit) else {
            throw StreamFault.tooManyStreams(limit: limit)
        }
        state.withLock {
            $0.expiresAt = principal.expiresAt
            $0.countedSubject = principal.subject
        }
        return StreamSetup(principal: principal, key: key, cursor: hello.cursor, epoch: dependencies.store.epoch)
    }

    // MARK: Reading client messages

    private func readMessages(_ inbound: WebSocketInboundStream) async {
        do {
            for try await message in inbound.messages(maxSize: dependencies.configuration.webSocketMessageBytesMax) {
                guard case .text(let text) = message else {
                    requestClose(code: 4400, fault: .badRequest("messages must be JSON text"))
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
                    requestClose(code: fault.closeCode, fault: fault)
                    return
                } catch {
                    logger.error("handling a message failed", metadata: ["error": "\(error)"])
                    requestClose(code: 1011, fault: nil)
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

    /// Asks the sender to close with `code` (after an `error` message for a client fault). The
    /// first request wins; the sender writes it when it stops.
    func requestClose(code: UInt16?, fault: StreamFault?) {
        let (first, subscription, hello, waiters) = state.withLock {
            state -> (Bool, Subscription?, CheckedContinuation<String?, Never>?, [CheckedContinuation<Bool, Never>]) in
            guard state.phase != .closing else { return (false, nil, nil, []) }
            state.phase = .closing
            if let code { state.pendingClose = (code, fault) }
            defer {
                state.hello = nil
                state.streamingWaiters = []
            }
            return (true, state.subscription, state.hello, state.streamingWaiters)
        }
        guard first else { return }
        hello?.resume(returning: nil)
        for waiter in waiters { waiter.resume(returning: false) }
        subscription?.close(.requested(code: code ?? 1000, errorCode: fault?.errorCode, message: fault?.message))
        if let code { dependencies.metrics.closed(code: code) }
    }

    /// Writes the owed close once: the error message, then the close frame.
    func sendPendingClose() async {
        let pending = state.withLock { state -> (code: UInt16, fault: StreamFault?)? in
            guard !state.closeSent, let pending = state.pendingClose else { return nil }
            state.closeSent = true
            return pending
        }
        guard let pending else { return }
        if let fault = pending.fault { try? await send(ServerMessage.error(fault)) }
        try? await outbound.close(.init(codeNumber: Int(pending.code)), reason: pending.fault?.message)
    }

    /// Closes from outside the sending task when the sender may be stuck in a write to a client
    /// that reads nothing: the close frame is queued behind what is already pending.
    private func closeStuck(code: UInt16) {
        requestClose(code: code, fault: nil)
        let claimed = state.withLock { state -> Bool in
            guard !state.closeSent else { return false }
            state.closeSent = true
            return true
        }
        guard claimed else { return }
        let outbound = self.outbound
        Task { try? await outbound.close(.init(codeNumber: Int(code)), reason: nil) }
    }

    /// Stops the sender when the client has gone.
    private func finish() {
        requestClose(code: nil, fault: nil)
    }

    // MARK: Watchdog

    /// What the watchdog should do with this session now.
    func check(now: ContinuousClock.Instant, wallSeconds: Int64) {
        let (phase, expiresAt, writeStartedAt) = state.withLock { ($0.phase, $0.expiresAt, $0.writeStartedAt) }
        switch phase {
        case .closing: return
        case .awaitingHello where now >= helloDeadline:
            requestClose(code: 4408, fault: .timeout)
        default:
            if let started = writeStartedAt, now - started >= dependencies.configuration.writeTimeout {
                logger.info("closing a connection that stopped reading")
                closeStuck(code: 4429)
            } else if let expiresAt, wallSeconds >= expiresAt + TokenVerifier.leewaySeconds {
                requestClose(code: 4401, fault: .expired)
            }
        }
    }

    /// Shutdown: close with 1001.
    func shutDown() {
        requestClose(code: 1001, fault: nil)
    }

    var isClosing: Bool { state.withLock { $0.phase == .closing } }
    var lastDelivered: Int64 { state.withLock { $0.lastDelivered } }
}
