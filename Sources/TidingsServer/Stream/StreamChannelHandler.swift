import Logging
import NIOCore
import NIOWebSocket
import TidingsFanout
import TidingsStore

/// What every stream connection of a server shares.
struct StreamServices: Sendable {
    let store: any EventStore
    let hub: Hub
    let helloCheck: HelloCheck
    let metrics: ServerMetrics
    let sessions: SessionRegistry
    let delivery: StreamDelivery.Configuration
    /// The largest message a client may send, after joining fragments and inflating (1009).
    let messageBytesMax: Int
    let logger: Logger
}

/// One `/v1/stream` connection after the upgrade: the last handler of the channel's pipeline,
/// behind NIO's WebSocket frame codec. It joins fragmented messages, inflates and deflates
/// them when the client chose `permessage-deflate`, It feeds what happens to the connection's
/// `StreamDelivery` and carries out the actions it answers, on the channel's event loop. An idle
/// connection is this object and its machine: no task, no stack. Store calls run in tasks off
/// the event loop and come back to it as inputs; live events come from the hub the same way.
final class StreamChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let services: StreamServices
    private let headerToken: String?
    /// The event loop's codec when the connection uses `permessage-deflate`.
    private var deflate: DeflateCodec?
    private let compresses: Bool
    /// A message whose first fragments have come: its opcode, whether it is compressed, its
    /// bytes, and how many fragments.
    private var fragments: (opcode: WebSocketOpcode, compressed: Bool, data: ByteBuffer, count: Int)?
    private var machine: StreamDelivery
    private var context: ChannelHandlerContext?
    private var subscriber: ChannelSubscriber?
    /// The subject whose stream count this connection holds.
    private var subject: String?
    /// Inputs that arrived while an earlier one's actions ran (a write that changed the
    /// channel's writability, a completed future): handled in order after it.
    private var feeding = false
    private var queued: [StreamDelivery.Input] = []
    private var readingPaused = false
    private var readHeld = false
    /// The last flush, for a close that waits for what was written.
    private var lastFlush: EventLoopFuture<Void>?
    private let id = RequestID.make()

    init(services: StreamServices, headerToken: String?, compresses: Bool) {
        self.services = services
        self.headerToken = headerToken
        self.compresses = compresses
        machine = StreamDelivery(configuration: services.delivery, now: .now)
    }

    /// Made when something is logged, not per connection or per store call.
    private var logger: Logger { Self.logger(services.logger, connection: id) }

    private static func logger(_ base: Logger, connection id: String) -> Logger {
        var logger = base
        logger[metadataKey: "connection_id"] = .string(id)
        return logger
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        services.sessions.add(self, on: context.eventLoop)
        if compresses { deflate = services.sessions.deflateCodec(on: context.eventLoop) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard
            !frame.rsv2 && !frame.rsv3
                && (!frame.rsv1 || (deflate != nil && (frame.opcode == .text || frame.opcode == .binary)))
        else {
            feed(.protocolError(code: 1002))
            return
        }
        switch frame.opcode {
        case .text, .binary:
            guard fragments == nil else {
                feed(.protocolError(code: 1002))
                return
            }
            if frame.fin {
                received(frame.opcode, compressed: frame.rsv1, frame.unmaskedData)
            } else {
                fragments = (frame.opcode, frame.rsv1, frame.unmaskedData, 1)
            }
        case .continuation:
            guard var message = fragments else {
                feed(.protocolError(code: 1002))
                return
            }
            var data = frame.unmaskedData
            guard message.data.readableBytes + data.readableBytes <= services.messageBytesMax else {
                fragments = nil
                feed(.protocolError(code: 1009))
                return
            }
            guard message.count < Self.fragmentsMax else {
                fragments = nil
                feed(.protocolError(code: 1009))
                return
            }
            message.data.writeBuffer(&data)
            message.count += 1
            if frame.fin {
                fragments = nil
                received(message.opcode, compressed: message.compressed, message.data)
            } else {
                fragments = message
            }
        case .ping:
            feed(.ping(Array(frame.unmaskedData.readableBytesView)))
        case .pong:
            feed(.pong)
        case .connectionClose:
            var payload = frame.unmaskedData
            feed(.closeReceived(code: payload.readInteger(as: UInt16.self)))
        default:
            feed(.protocolError(code: 1002))
        }
    }

    /// Fragments one message may come in.
    static let fragmentsMax = 1_024

    /// A whole message: inflated when compressed, then to the machine.
    private func received(_ opcode: WebSocketOpcode, compressed: Bool, _ payload: ByteBuffer) {
        var payload = payload
        if compressed, let deflate {
            do {
                let bytes = try deflate.decompress(payload, limit: services.messageBytesMax)
                payload = ByteBuffer(bytes: bytes)
            } catch .tooLarge {
                feed(.protocolError(code: 1009))
                return
            } catch {
                feed(.protocolError(code: 1007))
                return
            }
        }
        if opcode == .text {
            feed(.text(String(decoding: payload.readableBytesView, as: UTF8.self)))
        } else {
            feed(.binary)
        }
    }

    func read(context: ChannelHandlerContext) {
        // Back-pressure on the client: no more frames while one of its messages is handled.
        if readingPaused {
            readHeld = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        feed(.writabilityChanged(context.channel.isWritable))
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            feed(.closeRequested(code: 1001))
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch error {
        case NIOWebSocketError.invalidFrameLength:
            feed(.protocolError(code: 1009))
        case is NIOWebSocketError:
            feed(.protocolError(code: 1002))
        default:
            // The socket failed (a reset): nothing more can be sent.
            logger.debug("stream connection failed", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        feed(.channelClosed)
        if let subscriber {
            services.hub.remove(subscriber)
            self.subscriber = nil
        }
        if let subject {
            services.sessions.releaseStream(subject: subject)
            self.subject = nil
        }
        services.sessions.remove(self, on: context.eventLoop)
        context.fireChannelInactive()
    }

    /// Closes the channel at once (shutdown, for a client that did not answer the close).
    func closeChannel() {
        context?.close(promise: nil)
    }

    /// The machine drops a client that does not answer its close frame at its next tick past
    /// the close timeout; this timer does it too, for a connection whose loop no longer ticks
    /// (one accepted while the server shuts down).
    private func dropAfterCloseTimeout(_ context: ChannelHandlerContext) {
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: TimeAmount(services.delivery.closeTimeout)) {
            handler.value.closeChannel()
        }
    }

    // MARK: Driving the machine

    /// Hands one input to the machine and carries out its actions; inputs that arrive meanwhile
    /// wait their turn.
    func feed(_ input: StreamDelivery.Input) {
        if feeding {
            queued.append(input)
            return
        }
        feeding = true
        defer { feeding = false }
        var next: StreamDelivery.Input? = input
        while let current = next {
            perform(machine.handle(current, now: .now))
            next = queued.isEmpty ? nil : queued.removeFirst()
        }
    }

    private func perform(_ actions: [StreamDelivery.Action]) {
        guard let context else { return }
        for (index, action) in actions.enumerated() {
            switch action {
            case .write(let frame):
                let flushesNext = index + 1 < actions.count && actions[index + 1] == .flush
                write(frame, context: context, reportingCompletion: flushesNext)
                if case .close = frame { dropAfterCloseTimeout(context) }
            case .flush:
                context.flush()
            case .checkHello(let text):
                let result = services.helloCheck.check(text, headerToken: headerToken, logger: logger)
                if case .success(let hello) = result { subject = hello.principal.subject }
                feed(.helloChecked(result))
            case .start(let key, let cursor):
                start(key, cursor: cursor, context: context)
            case .readPage(let after, let limit):
                readPage(after: after, limit: limit, context: context)
            case .readCounts(let position):
                readCounts(at: position, context: context)
            case .mark(let ref, let change):
                mark(ref: ref, change, context: context)
            case .refuseMark(let ref):
                refuseMark(ref: ref, context: context)
            case .pauseReading:
                readingPaused = true
            case .resumeReading:
                readingPaused = false
                if readHeld {
                    readHeld = false
                    context.read()
                }
            case .closeChannel(let afterFlush):
                if afterFlush, let lastFlush {
                    let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                    lastFlush.whenComplete { _ in bound.value.close(promise: nil) }
                } else {
                    context.close(promise: nil)
                }
            case .countDelivered(let count):
                services.metrics.delivered(count)
            case .countCatchUp:
                services.metrics.caughtUp()
            case .countClosed(let code):
                services.metrics.closed(code: code)
            case .logStuckWriter:
                logger.info("closing a connection that stopped reading")
            }
        }
    }

    private func write(_ frame: StreamDelivery.OutboundFrame, context: ChannelHandlerContext, reportingCompletion: Bool)
    {
        let allocator = context.channel.allocator
        let webSocketFrame: WebSocketFrame
        switch frame {
        case .text(let bytes):
            if let deflate, bytes.count >= PerMessageDeflate.smallestCompressed {
                webSocketFrame = WebSocketFrame(
                    fin: true, rsv1: true, opcode: .text, data: deflate.compress(bytes, allocator: allocator))
            } else {
                webSocketFrame = WebSocketFrame(fin: true, opcode: .text, data: allocator.buffer(bytes: bytes))
            }
        case .ping:
            webSocketFrame = WebSocketFrame(fin: true, opcode: .ping, data: allocator.buffer(capacity: 0))
        case .pong(let bytes):
            webSocketFrame = WebSocketFrame(fin: true, opcode: .pong, data: allocator.buffer(bytes: bytes))
        case .close(let code, let reason):
            var data = allocator.buffer(capacity: 2 + reason.utf8.count)
            data.writeInteger(code)
            data.writeString(reason)
            webSocketFrame = WebSocketFrame(fin: true, opcode: .connectionClose, data: data)
        }
        guard reportingCompletion else {
            context.write(wrapOutboundOut(webSocketFrame), promise: nil)
            return
        }
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.write(wrapOutboundOut(webSocketFrame), promise: promise)
        lastFlush = promise.futureResult
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        promise.futureResult.whenSuccess { handler.value.feed(.writeFinished) }
    }

    // MARK: Store calls, off the event loop

    /// Runs `call` in a task and feeds its answer back on the event loop; a store error becomes
    /// the close it calls for.
    private func run(
        _ context: ChannelHandlerContext, _ call: @escaping @Sendable () async throws -> StreamDelivery.Input
    ) {
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let base = services.logger
        let id = self.id
        Task {
            let input: StreamDelivery.Input
            do {
                input = try await call()
            } catch let error as StoreError where error.code == .invalidCursor {
                input = .storeFailed(.invalidCursor(error.message))
            } catch let error as StoreError where error.code == .badRequest || error.code == .payloadTooLarge {
                input = .storeFailed(.badRequest(error.message))
            } catch {
                StreamChannelHandler.logger(base, connection: id).error(
                    "stream failed", metadata: ["error": "\(error)"])
                input = .storeFailed(nil)
            }
            handler.eventLoop.execute { handler.value.feed(input) }
        }
    }

    private func start(_ key: StreamKey, cursor: String?, context: ChannelHandlerContext) {
        // Subscribe before reading the log: nothing committed in between can be missed.
        let subscriber = ChannelSubscriber(key: key, handler: NIOLoopBound(self, eventLoop: context.eventLoop))
        self.subscriber = subscriber
        services.hub.add(subscriber)
        services.metrics.opened()
        let store = services.store
        run(context) {
            switch key {
            case .user(let user): .started(try await store.startUserStream(userID: user, cursor: cursor))
            case .all: .started(try await store.startAllStream(cursor: cursor))
            }
        }
    }

    private func readPage(after: String, limit: Int, context: ChannelHandlerContext) {
        let store = services.store
        let user = userID
        run(context) {
            if let user {
                .pageRead(try await store.userEvents(userID: user, after: after, limit: limit))
            } else {
                .pageRead(try await store.allEvents(after: after, filter: EventFilter(), limit: limit))
            }
        }
    }

    private func readCounts(at position: Int64, context: ChannelHandlerContext) {
        guard let user = userID else { return }
        let store = services.store
        run(context) { .countsRead(try await store.counts(userID: user, atStreamSeq: position)) }
    }

    private func mark(ref: String, _ change: StateChange, context: ChannelHandlerContext) {
        guard let user = userID else { return }
        let store = services.store
        run(context) {
            let outcome = try await store.mark(userID: user, change)
            let status = outcome.read.isEmpty ? "noop" : "ok"
            return .markAnswered(
                ack: ServerMessage.ack(ref: ref, status: status, counts: outcome.counts),
                after: outcome.headStreamSeq)
        }
    }

    private func refuseMark(ref: String, context: ChannelHandlerContext) {
        let store = services.store
        let user = userID
        run(context) {
            var counts: InboxCounts?
            if let user { counts = try? await store.userHead(userID: user).counts }
            return .markAnswered(ack: ServerMessage.ack(ref: ref, status: "forbidden", counts: counts), after: 0)
        }
    }

    private var userID: String? {
        if case .user(let id) = machine.accepted?.key { return id }
        return nil
    }
}

/// A connection's place in the hub: live events go to its channel's event loop.
final class ChannelSubscriber: LiveSubscriber {
    let key: StreamKey
    private let handler: NIOLoopBound<StreamChannelHandler>

    init(key: StreamKey, handler: NIOLoopBound<StreamChannelHandler>) {
        self.key = key
        self.handler = handler
    }

    func receive(_ events: [StoredEvent]) {
        let handler = self.handler
        handler.eventLoop.execute { handler.value.feed(.live(events)) }
    }
}
