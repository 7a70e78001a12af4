import TidingsStore

/// Tuning of a PostgreSQL store; the defaults suit a node beside a PostgreSQL on the network.
public struct PostgresOptions: Sendable {
    /// Connections this node opens to the primary, for appends and reads together.
    public var connectionsMax = 16
    /// Record bytes a sealed block holds at most (the SQLite engine's block size).
    public var blockTargetBytes = 4_096
    /// How long a call may hold its connection before it fails with `unavailable` and the
    /// connection is closed: a server that stops answering would otherwise hold the call for as
    /// long as TCP keeps the connection. Work bounded only by the log (rebuild, verify) has no
    /// such bound.
    public var callDeadline: Duration = .seconds(10)
    /// Events one group transaction appends at most.
    public var groupEventsMax = 8_192
    /// Decompressed blocks this node keeps in memory.
    public var blockCacheBytes = 32 * 1024 * 1024
    /// An export reads at most this much per run, each in its own short transaction.
    public var exportRunBytes = 256 * 1024
    public var exportRunBlocks = 256
    /// Outbox rows one drain appends at most (each row its own atomic append).
    public var outboxBatchMax = 1_000
    /// How often a node looks at the outbox when no notification woke it.
    public var outboxPollMilliseconds = 1_000
    /// Whether this node drains the outbox at all (a node only for reads may not).
    public var drainsOutbox = true
    public var clock: @Sendable () -> Int64 = { WallClock.nowMilliseconds() }

    public init() {}
}
