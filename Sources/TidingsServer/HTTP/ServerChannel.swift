import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOWebSocket

/// The server's connections: HTTP/1.1 for the API, upgraded to a WebSocket on `/v1/stream`.
///
/// An upgraded connection is handed to NIO channel handlers (the frame codec and
/// `StreamChannelHandler`) and lives on in them: no task waits on it. Every connection is
/// bounded per address from its accept (`ConnectionLimiter`), and an HTTP connection is closed
/// once its handler is done, also when the request head failed to parse (an oversized or
/// malformed head would otherwise leave the socket open with nobody reading it).
struct ServerChannel: ServerChildChannel, HTTPChannelHandler {
    enum Connection: Sendable {
        case http(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
        /// An upgrade request for another path, or one the stream refused.
        case refusedUpgrade(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
        case stream
    }

    struct Value: ServerChildChannelValue {
        let connection: EventLoopFuture<Connection>
        /// False for a connection over the limit: it is closed before anything is read from it.
        let admitted: Bool
        let channel: any Channel
    }

    static let streamPath = "/v1/stream"

    let responder: HTTPChannelHandler.Responder
    let limiter: ConnectionLimiter
    let streams: StreamServices
    let configuration: ServerConfiguration

    init(
        responder: @escaping HTTPChannelHandler.Responder, limiter: ConnectionLimiter, streams: StreamServices,
        configuration: ServerConfiguration
    ) {
        self.responder = Self.redirectingUpgrades(responder)
        self.limiter = limiter
        self.streams = streams
        self.configuration = configuration
    }

    /// A failed setup would end the server's accept loop, so a refused connection is set up like
    /// any other and closed when it is handed over.
    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let admitted = limiter.admit(channel)
        return channel.eventLoop.makeCompletedFuture {
            let connection = try configurePipeline(channel)
            try channel.pipeline.syncOperations.addHandler(FirstHeadErrorResponder())
            return Value(connection: connection, admitted: admitted, channel: channel)
        }
    }

    private func configurePipeline(_ channel: any Channel) throws -> EventLoopFuture<Connection> {
        let upgradeAttempted = NIOLoopBoundBox(false, eventLoop: channel.eventLoop)
        /// Whether the upgrade's answer accepted `permessage-deflate`.
        let compresses = NIOLoopBoundBox(false, eventLoop: channel.eventLoop)
        let streams = self.streams
        let logger = streams.logger
        let deadlineHandler = ConnectionDeadlineHandler(deadlines: configuration.httpDeadlines) {
            [metrics = streams.metrics] phase, peer in
            metrics.deadlineClosed(phase: phase.rawValue)
            logger.info(
                "closing a connection past its deadline",
                metadata: ["phase": .string(phase.rawValue), "peer": .string(peer)])
        }
        try channel.pipeline.syncOperations.addHandler(deadlineHandler, position: .first)
        let deadlines = NIOLoopBound(deadlineHandler, eventLoop: channel.eventLoop)
        let upgrader = NIOTypedWebSocketServerUpgrader<Connection>(
            maxFrameSize: configuration.webSocketMessageBytesMax,
            enableAutomaticErrorHandling: false,
            shouldUpgrade: { channel, head in
                upgradeAttempted.value = true
                deadlines.value.headEnded()
                let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first
                guard path == Self.streamPath[...] else { return channel.eventLoop.makeSucceededFuture(nil) }
                var headers = HTTPHeaders()
                if let deflate = PerMessageDeflate.response(
                    toOffers: head.headers[canonicalForm: "sec-websocket-extensions"].map(String.init))
                {
                    headers.add(name: "Sec-WebSocket-Extensions", value: deflate)
                    compresses.value = true
                }
                return channel.eventLoop.makeSucceededFuture(headers)
            },
            upgradePipelineHandler: { channel, head in
                channel.eventLoop.makeCompletedFuture {
                    let token = NotificationServer.bearerToken(head.headers.first(name: "authorization"))
                    // The stream keeps its own deadlines (hello, stalled writes, pings).
                    let deadlineContext = try channel.pipeline.syncOperations.context(handler: deadlines.value)
                    channel.pipeline.syncOperations.removeHandler(context: deadlineContext, promise: nil)
                    try channel.pipeline.syncOperations.addHandler(
                        StreamChannelHandler(services: streams, headerToken: token, compresses: compresses.value))
                    return .stream
                }
            })
        let upgrade = NIOTypedHTTPServerUpgradeConfiguration<Connection>(upgraders: [upgrader]) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(HTTPPhaseObserver(deadlines.value))
                try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
                try channel.pipeline.syncOperations.addHandler(
                    HTTPConnectionStateHandler(idleTimeout: nil, logger: streams.logger))
                let asyncChannel = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                    wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
                return upgradeAttempted.value ? .refusedUpgrade(asyncChannel) : .http(asyncChannel)
            }
        }
        var pipeline = NIOUpgradableHTTPServerPipelineConfiguration<Connection>(upgradeConfiguration: upgrade)
        pipeline.enablePipelining = false  // NIOAsyncChannel reads one request at a time
        pipeline.enableErrorHandling = false  // FirstHeadErrorResponder and Hummingbird answer
        pipeline.enableResponseHeaderValidation = false  // HTTPTypes validates
        pipeline.decoderConfiguration.maxHeaderFieldSize = configuration.requestHeaderBytesMax
        pipeline.decoderConfiguration.maxHeaderListSize = configuration.requestHeaderBytesMax
        pipeline.decoderConfiguration.maxHeaderFieldCount = configuration.requestHeaderFieldsMax
        return try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(configuration: pipeline)
    }

    func handle(value: Value, logger: Logger) async {
        if value.admitted {
            do {
                switch try await value.connection.get() {
                case .http(let http):
                    await handleHTTP(asyncChannel: http, logger: logger)
                case .refusedUpgrade(let http):
                    await refuseUpgrade(http)
                case .stream:
                    // The channel's handlers own it from here.
                    return
                }
            } catch {
                logger.debug("connection ended before its first request", metadata: ["error": "\(error)"])
            }
        }
        try? await value.channel.close()
    }

    /// `400` with `Connection: close`.
    private func refuseUpgrade(_ channel: NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>) async {
        try? await channel.executeThenClose { _, outbound in
            let head = HTTPResponse(status: .badRequest, headerFields: [.connection: "close", .contentLength: "0"])
            try await outbound.write(contentsOf: [.head(head), .end(nil)])
        }
    }

    /// NIO upgrades only on a connection's first request: a later request that asks for a
    /// WebSocket is redirected to the same address with `Connection: close`, so the client
    /// upgrades on a new connection.
    private static func redirectingUpgrades(
        _ responder: @escaping HTTPChannelHandler.Responder
    ) -> HTTPChannelHandler.Responder {
        struct RedirectedUpgrade: Error {}
        return { request, responseWriter, channel in
            guard request.headers[.upgrade]?.lowercased() == "websocket" else {
                try await responder(request, responseWriter, channel)
                return
            }
            var location = request.uri.path
            if let query = request.uri.query { location += "?\(query)" }
            let response = HTTPResponse(
                status: .temporaryRedirect, headerFields: [.connection: "close", .location: location])
            try await responseWriter.writeResponse(response)
            throw RedirectedUpgrade()
        }
    }
}
