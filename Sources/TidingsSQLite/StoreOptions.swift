import TidingsStore

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
    /// Events the projection keeps in memory at most: when checkpoints keep failing (a full
    /// disk, another process holding the write lock), appends are refused with `unavailable`
    /// at this bound, each retrying the checkpoint first, rather than memory growing.
    public var overlayEventsMax = 4 * 32_768
    /// Most events one group commit takes (a single request may be larger: it is atomic).
    public var groupEventsMax = 8_192
    /// Read connections for short reads (unread state, pages, stream starts and replays,
    /// stats): the most that run at once.
    public var shortReadersMax = 4
    /// Read connections for long scans (exports, verification, rebuild), apart from the short
    /// reads so that no number of scans delays them.
    public var scanReadersMax = 2
    /// Reads waiting for a connection, per lane; one more is refused with `unavailable`. A
    /// waiting read holds no thread, only its task.
    public var readsWaitingMax = 65_536
    /// Envelope bytes one run of an export writes at most before it ends its read transaction
    /// (`LogExport`): the most an export holds in memory between a read and its client.
    public var exportRunBytes = 256 * 1024
    /// Blocks one export run looks at at most, so a filter that matches little still ends its
    /// runs quickly.
    public var exportRunBlocks = 256
    /// Stream-index entries one run of a single user's export reads at most.
    public var exportRunEntries = 1_000
    /// Page cache of each scan connection (a scan reads each page once, so a large cache
    /// would only hold what is not read again).
    public var scanPageCacheBytes = 8 * 1024 * 1024
    /// Decompressed blocks kept in memory for per-user reads.
    public var blockCacheBytes = 32 * 1024 * 1024
    /// Bytes of the database file each read connection maps into memory (SQLite's `mmap_size`;
    /// Debian's SQLite maps at most 2 GiB; the rest of a larger file is read with `pread`).
    /// A mapped page is read in place instead of being copied into the connection's page
    /// cache: a per-user replay that misses the block cache reads a block per event, and
    /// mapping takes about a third off each of those reads. It is address space, not memory:
    /// the pages are the kernel's page cache, shared by every connection. 0 turns it off, for
    /// a file system whose read errors must come back as errors (a mapped read that fails is
    /// a signal, not an error).
    public var readMapBytes = 2_047 << 20
    /// SQLite page size of a new store.
    public var pageSizeBytes = 16384
    /// SQLite page cache per connection.
    public var pageCacheBytes = 64 * 1024 * 1024
    /// How long a writer waits for another process's transaction before failing an append.
    public var busyTimeoutMilliseconds: Int32 = 10_000
    /// Source of wall-clock time (tests replace it to make the clock jump).
    public var clock: @Sendable () -> Int64 = { WallClock.nowMilliseconds() }
    /// Runs at the start of every projection checkpoint; a test makes it throw to see a
    /// checkpoint fail the way a full disk makes it fail.
    var beforeCheckpoint: (@Sendable () throws -> Void)?

    public init() {}
}
