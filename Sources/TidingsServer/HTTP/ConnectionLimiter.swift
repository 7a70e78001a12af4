import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// Bounds the open connections from one address: a connection beyond the bound is closed as soon
/// as it is accepted, before a byte is read, so a single client cannot take every descriptor.
/// The count follows each channel's close, whatever becomes of its pipeline.
final class ConnectionLimiter: Sendable {
    let maximumPerAddress: Int
    private let open = Mutex<[String: Int]>([:])
    private let logger: Logger
    private let refused = Atomic<Int>(0)

    init(maximumPerAddress: Int, logger: Logger) {
        self.maximumPerAddress = maximumPerAddress
        self.logger = logger
    }

    /// Connections refused so far.
    var refusedCount: Int { refused.load(ordering: .relaxed) }

    /// Counts the channel in and returns true, or returns false when its address is at the bound.
    func admit(_ channel: any Channel) -> Bool {
        let address = channel.remoteAddress?.ipAddress ?? "unknown"
        let admitted = open.withLock { open -> Bool in
            let current = open[address] ?? 0
            guard current < maximumPerAddress else { return false }
            open[address] = current + 1
            return true
        }
        guard admitted else {
            // One line per thousand refusals: a flood must not become a flood of log lines.
            if refused.add(1, ordering: .relaxed).newValue % 1_000 == 1 {
                logger.warning(
                    "refusing connections beyond the limit per address",
                    metadata: ["address": .string(address), "limit": .stringConvertible(maximumPerAddress)])
            }
            return false
        }
        channel.closeFuture.whenComplete { _ in
            self.open.withLock { open in
                let remaining = (open[address] ?? 1) - 1
                open[address] = remaining > 0 ? remaining : nil
            }
        }
        return true
    }
}

/// Answers a request head that fails to parse (too large, too many fields, malformed) before the
/// first request of a connection is read: `431` or `400` with `Connection: close`, then closes.
/// Later requests on a kept-alive connection are Hummingbird's to answer, so the handler leaves
/// the pipeline as soon as the first head arrives.
final class FirstHeadErrorResponder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    typealias OutboundOut = HTTPServerResponsePart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parseError = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        let status: HTTPResponseStatus =
            switch parseError {
            case .headerOverflow: .requestHeaderFieldsTooLarge
            default: .badRequest
            }
        let head = HTTPResponseHead(
            version: .http1_1, status: status, headers: ["Connection": "close", "Content-Length": "0"])
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            bound.value.close(promise: nil)
        }
    }
}
