import Logging
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
    import Glibc
#endif

/// Closes an HTTP connection whose current phase outlasts its deadline (`HTTPDeadlines`): a head
/// or body that trickles in, a kept-alive connection left idle, a response its client stops
/// reading. It sits first in the pipeline, next to the socket, where it sees every byte that
/// arrives and when the socket stops taking writes; `HTTPPhaseObserver`, behind the HTTP
/// decoder, tells it where requests and responses begin and end. One timer per connection,
/// never moved (see `arm`).
/// An upgraded connection removes the handler: the stream keeps its own deadlines.
final class ConnectionDeadlineHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    /// Told once per connection that a deadline closes, with the phase and the peer's address.
    typealias Expiry = @Sendable (ConnectionPhases.Phase, String) -> Void

    private var phases: ConnectionPhases
    private let onExpiry: Expiry
    private var context: ChannelHandlerContext?
    private var timer: Scheduled<Void>?
    /// Set once a deadline closes the connection: reads that arrive while it closes must not
    /// set the timer again and count the close twice.
    private var closing = false

    init(deadlines: HTTPDeadlines, onExpiry: @escaping Expiry) {
        phases = ConnectionPhases(deadlines: deadlines, acceptedAt: .now())
        self.onExpiry = onExpiry
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        arm()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        phases.received(at: .now())
        arm()
        context.fireChannelRead(data)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        phases.writable(context.channel.isWritable, at: .now())
        arm()
        context.fireChannelWritabilityChanged()
    }

    // MARK: What HTTPPhaseObserver and the upgrader report

    func headEnded() {
        phases.headEnded(at: .now())
        arm()
    }

    func requestEnded() {
        phases.requestEnded(at: .now())
        arm()
    }

    func responseEnded() {
        phases.responseEnded(at: .now())
        arm()
    }

    // MARK: The timer

    /// Sets the timer when none is set, for the nearest deadline or the shortest deadline from
    /// now, whichever comes first. No phase that begins later can end before that, so the timer
    /// never has to be moved: a request costs no timer work, and a timer that finds nothing
    /// passed sets itself again.
    private func arm() {
        guard !closing, timer == nil, let context, let next = phases.next else { return }
        let at = min(next.at, .now() + TimeAmount(phases.deadlines.shortest))
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: at) { self.fire() }
    }

    private func fire() {
        timer = nil
        guard !closing, let context else { return }
        let now = NIODeadline.now()
        guard let phase = phases.expired(at: now) else {
            arm()
            return
        }
        #if canImport(Glibc)
            if phase == .write, let socket = context.channel as? any SocketOptionProvider {
                // Writes wait on the client: it is past its deadline only if TCP has sent it nothing
                // either (a write the client drains slowly completes late, but bytes leave all along).
                socket.getTCPInfo().assumeIsolated().whenComplete { result in
                    guard let context = self.context else { return }
                    if case .success(let info) = result {
                        self.phases.socketSent(at: now - .milliseconds(Int64(info.tcpi_last_data_sent)))
                        if self.phases.expired(at: now) == nil {
                            self.arm()
                            return
                        }
                    }
                    self.expire(.write, context: context)
                }
                return
            }
        #endif
        expire(phase, context: context)
    }

    private func expire(_ phase: ConnectionPhases.Phase, context: ChannelHandlerContext) {
        closing = true
        let address = context.channel.remoteAddress
        onExpiry(phase, [address?.ipAddress, address?.port.map(String.init)].compactMap { $0 }.joined(separator: ":"))
        context.close(promise: nil)
    }
}

/// Tells the connection's `ConnectionDeadlineHandler` where requests and responses begin and end.
/// It stands right behind NIO's HTTP/1 codec, where the parts are whole.
final class HTTPPhaseObserver: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart

    private let deadlines: ConnectionDeadlineHandler

    init(_ deadlines: ConnectionDeadlineHandler) {
        self.deadlines = deadlines
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head: deadlines.headEnded()
        case .body: break
        case .end: deadlines.requestEnded()
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { deadlines.responseEnded() }
        context.write(data, promise: promise)
    }
}
