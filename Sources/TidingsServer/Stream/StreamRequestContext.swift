import Hummingbird
import HummingbirdWebSocket
import Synchronization

/// The request context of the WebSocket upgrade route. HummingbirdWebSocket stores the route's
/// handler, together with a copy of this context, in a box the context itself points to: a
/// reference cycle that would keep every connection's context (and its request) alive forever.
/// This context reaches the box through a holder the stream handler empties once it runs, which
/// breaks the cycle; the soak test watches resident memory stay flat across connections.
struct StreamRequestContext: RequestContext, WebSocketRequestContext {
    final class ReferenceHolder: Sendable {
        let reference = Mutex<WebSocketHandlerReference<StreamRequestContext>?>(.init())
    }

    var coreContext: CoreRequestContextStorage
    let holder = ReferenceHolder()

    init(source: Source) {
        self.coreContext = .init(source: source)
    }

    /// Valid from the upgrade request until `releaseHandler()`; the router reads it only then.
    var webSocket: WebSocketHandlerReference<StreamRequestContext> {
        holder.reference.withLock { $0 } ?? .init()
    }

    /// Drops this context's link to the handler box, so the box, the handler and this context
    /// are freed when the connection ends.
    func releaseHandler() {
        holder.reference.withLock { $0 = nil }
    }
}
