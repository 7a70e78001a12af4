import Foundation
import Hummingbird
import HummingbirdCore
public import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import TidingsFanout
public import TidingsStore
import UnixSignals

/// `tidings serve`: the HTTP API and the WebSocket stream of PROTOCOL.md over one store, whichever
/// engine keeps it.
///
/// Runs as a ServiceGroup of five services, shut down in reverse order on SIGTERM/SIGINT: the
/// snooze sweeper stops, the stream connections go (closed with 1001, `/healthz` turns 503), then live fan-out
/// between processes (log watcher, Redis bridge), then the HTTP server (stops accepting,
/// finishes requests in flight, so no acknowledged append is cut short), then the store (queued
/// appends finish, the WAL is checkpointed).
public final class NotificationServer: Sendable {
    public let store: any EventStore
    public let configuration: ServerConfiguration
    let hub: Hub
    let watcher: LogWatcher
    let bridge: RedisBridge?
    let sessions: SessionRegistry
    let metrics = ServerMetrics()
    let health = HealthState()
    let verifier: TokenVerifier
    let logger: Logger
    private let group = Mutex<ServiceGroup?>(nil)
    private let stopRequested = Mutex(false)

    /// A server over an open store, signing and checking tokens with `secret` (`JWTSecret.load`).
    /// The server closes the store when it shuts down.
    public init(store: any EventStore, secret: [UInt8], configuration: ServerConfiguration, logger: Logger) {
        self.store = store
        self.configuration = configuration
        self.logger = logger
        verifier = TokenVerifier(secret: secret)
        sessions = SessionRegistry(tickInterval: configuration.watchdogInterval)
        let hub = Hub(subscriptionCapacity: configuration.subscriptionCapacity)
        let watcher = LogWatcher(store: store, hub: hub, interval: configuration.logWatchInterval)
        let bridge = configuration.redisURL.map {
            RedisBridge(url: $0, epoch: store.epochText, key: store.fanoutKey, hub: hub, logger: logger)
        }
        self.hub = hub
        self.watcher = watcher
        self.bridge = bridge
        store.onCommit { events, previous in
            // Straight to this node's streams when they continue what was handed on; else the
            // watcher reads them from the log with what came between (and finds any fork).
            if watcher.committedLocally(events, after: previous) { hub.publish(events) }
            bridge?.publish(events)
        }
        bridge?.onReconnect { watcher.checkNow() }
        bridge?.acceptsEvents { watcher.acceptsLiveEvents }
        store.onHistoryInDoubt { watcher.historyInDoubt() }
        let forkMetrics = metrics
        let registry = sessions
        watcher.onFork { fork in
            // Events this node streamed are gone from the log (a failover to a standby that
            // had not received them) and their seqs may name other events now. Every stream
            // closes; each client resumes through its cursor and gets `reset` where its
            // history was lost, never a gap or someone else's events.
            forkMetrics.historyForked()
            logger.error(
                "the log's history changed under this node: events it had streamed are no longer in the log; closing every stream so clients resume through their cursors",
                metadata: ["streamed_through": "\(fork.lost.seq)", "log_head": "\(fork.head.seq)"])
            registry.closeAll(code: 1012)
        }
        // Engines shared by several nodes say when others committed: read the log at once.
        store.onLogAdvanced { watcher.checkNow() }
        let metrics = self.metrics
        store.onFault { fault in
            // Logged once per run of failures, with its cause; every failure is counted.
            if fault.isRecovery {
                logger.info("store I/O recovered", metadata: ["operation": "\(fault.operation)"])
            } else {
                metrics.storeFault(fault.operation.rawValue)
                if fault.consecutiveFailures == 1 {
                    logger.error(
                        "store I/O failed", metadata: ["operation": "\(fault.operation)", "error": "\(fault.message)"])
                }
            }
        }
    }

    /// Serves until a graceful shutdown (SIGTERM, SIGINT or `shutDown()`); `onListening` gets
    /// the bound port once the server accepts connections.
    public func run(onListening: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let routes = APIRoutes(
            store: store, verifier: verifier, metrics: metrics, configuration: configuration, sessions: sessions,
            health: health, bridge: bridge)
        let router = Router(context: TidingsRequestContext.self)
        let table = RouteTable()
        router.add(middleware: RequestLoggingMiddleware(metrics: metrics, routes: table))
        routes.register(on: RouteRegistrar(router: router, table: table))

        let streams = StreamServices(
            store: store, hub: hub,
            helloCheck: HelloCheck(
                verifier: verifier, sessions: sessions, streamsPerSubjectMax: configuration.streamsPerSubjectMax),
            metrics: metrics, sessions: sessions,
            delivery: StreamDelivery.Configuration(
                helloTimeout: configuration.helloTimeout, writeTimeout: configuration.writeTimeout,
                pageSize: configuration.replayPageSize, liveCapacity: configuration.subscriptionCapacity,
                epoch: store.epoch, epochText: store.epochText),
            messageBytesMax: configuration.webSocketMessageBytesMax, logger: logger)
        let limiter = ConnectionLimiter(maximumPerAddress: configuration.connectionsPerAddressMax, logger: logger)
        let configuration = self.configuration
        let app = Application(
            router: router,
            server: HTTPServerBuilder { responder in
                ServerChannel(responder: responder, limiter: limiter, streams: streams, configuration: configuration)
            },
            // A backlog as deep as Linux allows by default (somaxconn): thousands of clients
            // reconnecting at once after a restart wait in it instead of retrying their SYNs.
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.host, port: configuration.port), serverName: "tidings",
                backlog: 4_096),
            onServerRunning: { channel in
                await onListening(channel.localAddress?.port ?? 0)
            },
            logger: logger)

        try await watcher.start()
        let serviceGroup = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [
                    StoreService(store: store, logger: logger), app,
                    FanoutService(watcher: watcher, bridge: bridge, logger: logger),
                    StreamsService(sessions: sessions, health: health),
                    SnoozeSweeper(
                        store: store, interval: configuration.snoozeSweepInterval, metrics: metrics, logger: logger),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        group.withLock { $0 = serviceGroup }
        if stopRequested.withLock({ $0 }) { await serviceGroup.triggerGracefulShutdown() }
        try await serviceGroup.run()
    }

    /// Starts a graceful shutdown, as SIGTERM does.
    public func shutDown() async {
        stopRequested.withLock { $0 = true }
        if let group = group.withLock({ $0 }) { await group.triggerGracefulShutdown() }
    }

    /// The upgrade's bearer token; "" for an `Authorization` value that is not one, so the
    /// hello's check refuses it rather than ignoring it.
    static func bearerToken(_ header: String?) -> String? {
        guard let header, !header.isEmpty else { return nil }
        return BearerCredential.token(from: header) ?? ""
    }
}

/// Closes the store last: queued appends finish, a checkpoint is written, the WAL truncated.
struct StoreService: Service {
    let store: any EventStore
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        store.close()
        logger.info("store closed")
    }
}

/// Runs the log watcher and the Redis bridge (when configured) until shutdown.
struct FanoutService: Service {
    let watcher: LogWatcher
    let bridge: RedisBridge?
    let logger: Logger

    func run() async throws {
        if let bridge {
            bridge.start()
            logger.info("live delivery between processes through Redis", metadata: ["redis": "\(bridge.url)"])
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await watcher.run() }
            try? await gracefulShutdown()
            group.cancelAll()
        }
        bridge?.stop()
    }
}

/// On shutdown closes every stream with 1001 first (each connection's event loop ticks its
/// watchdog meanwhile).
struct StreamsService: Service {
    let sessions: SessionRegistry
    let health: HealthState

    func run() async throws {
        try? await gracefulShutdown()
        health.beginShutdown()
        await sessions.shutDownAll(waitingAtMost: .seconds(5))
    }
}
