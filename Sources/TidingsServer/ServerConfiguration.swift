public import TidingsFanout
import TidingsStore

/// How a server runs. Every limit of PROTOCOL.md and every bound the server adds is here.
public struct ServerConfiguration: Sendable {
    /// The bounds' defaults, named for the command line's help.
    public enum Defaults {
        public static let requestBodyBytesMax = Limits.requestBodyBytesMax
        public static let webSocketMessageBytesMax = 1 << 20
        public static let requestHeaderBytesMax = 16 * 1024
        public static let requestHeaderFieldsMax = 100
        public static let connectionsPerAddressMax = 20_000
        public static let streamsPerSubjectMax = 64
    }

    /// Loopback unless told otherwise.
    public var host = "127.0.0.1"
    /// 0 picks a free port (tests); `onListening` reports it.
    public var port = 8080

    /// Largest request body (PROTOCOL.md: 8 MiB).
    public var requestBodyBytesMax = Defaults.requestBodyBytesMax
    /// Largest WebSocket message from a client (1 MiB).
    public var webSocketMessageBytesMax = Defaults.webSocketMessageBytesMax
    /// Request header bytes, all fields together; a larger head is refused (431).
    public var requestHeaderBytesMax = Defaults.requestHeaderBytesMax
    /// Header fields in one request.
    public var requestHeaderFieldsMax = Defaults.requestHeaderFieldsMax
    /// Open connections (HTTP and WebSocket) from one IP address; more are closed on accept.
    /// Loopback clients of the benchmarks open 10,000; behind a proxy every client shares its
    /// address, so size this to the proxy's.
    public var connectionsPerAddressMax = Defaults.connectionsPerAddressMax
    /// Open streams of one token subject (a user's devices and tabs); one more is closed with
    /// 1013 (try again later) right after its hello.
    public var streamsPerSubjectMax = Defaults.streamsPerSubjectMax
    /// How long each phase of an HTTP connection may last (head, body, idle keep-alive, writes
    /// to a client that reads nothing); past it the connection is closed.
    public var httpDeadlines = HTTPDeadlines()
    /// Time a new connection has for its hello.
    public var helloTimeout: Duration = .seconds(10)
    /// A connection whose writes make no progress this long is closed with 4429.
    public var writeTimeout: Duration = .seconds(30)
    /// Live events a connection's queue holds before it falls back to reading the log.
    public var subscriptionCapacity = 256
    /// Events read from the log per page while a connection replays or catches up.
    public var replayPageSize = 200
    /// How often the watchdog looks for stuck writes and expired tokens.
    public var watchdogInterval: Duration = .seconds(1)
    /// Redis for live delivery between processes sharing the store; nil: this process alone.
    public var redisURL: RedisURL?
    /// How often the log watcher looks for events other processes appended that this one has
    /// not seen (the guarantee behind Redis, which may lose messages).
    public var logWatchInterval: Duration = .milliseconds(500)
    /// How often the snooze sweeper looks for snoozes that have ended: a snooze ends at most
    /// this long after its `until`.
    public var snoozeSweepInterval: Duration = .seconds(1)

    public init() {}
}
