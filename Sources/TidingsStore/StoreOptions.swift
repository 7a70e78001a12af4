#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// How a store is opened. The defaults are what production wants.
public struct StoreOptions: Sendable {
    /// How durable an acknowledged append is.
    public enum Durability: String, Sendable, CaseIterable {
        /// `synchronous=FULL`: survives a crash of the process and of the machine.
        case full
        /// `synchronous=NORMAL`: survives a crash of the process; a power loss may lose the
        /// last transactions (the log stays consistent).
        case normal
    }

    public var durability: Durability = .full
    /// Raw record bytes that make a block: small blocks keep per-user replay cheap; the store's
    /// dictionary keeps their compression close to large blocks'.
    public var blockTargetBytes = 4_096
    /// Events the projection keeps in memory before writing a checkpoint of its base tables.
    public var checkpointEvents = 32_768
    /// Most events one group commit takes (a single request may be larger: it is atomic).
    public var groupEventsMax = 8_192
    /// Read connections kept open for concurrent readers.
    public var readersMax = 4
    /// Decompressed blocks kept in memory for per-user reads.
    public var blockCacheBytes = 32 * 1024 * 1024
    /// SQLite page size of a new store.
    public var pageSizeBytes = 16384
    /// SQLite page cache per connection.
    public var pageCacheBytes = 64 * 1024 * 1024
    /// How long a writer waits for another process's transaction before failing an append.
    public var busyTimeoutMilliseconds: Int32 = 10_000
    /// Source of wall-clock time (tests replace it to make the clock jump).
    public var clock: @Sendable () -> Int64 = { WallClock.nowMilliseconds() }

    public init() {}
}

/// Milliseconds since the Unix epoch from the system's real-time clock.
public enum WallClock {
    public static func nowMilliseconds() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }
}
