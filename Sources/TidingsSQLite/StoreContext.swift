import TidingsStore

/// What the writer and the readers of one open store share. Everything here is safe to use
/// from any thread: caches behind locks, the overlay behind a mutex, constants.
final class StoreContext: Sendable {
    let directory: String
    let databasePath: String
    let epoch: UInt64
    /// The epoch the store was created with, which derived event ids (and so the hash chain)
    /// are made from. A restore gives the store a new `epoch`, for cursors, and keeps this one.
    let idEpoch: UInt64
    let options: StoreOptions
    let overlay: OverlayLock
    let users = UserDirectory()
    let dictionaries = DictionaryCache()
    let blocks: BlockCache
    let sealedTotals = SealedBlockTotals()
    let derivedIDs: DerivedEventID
    let commitFeed = CommitFeed()
    let faults = FaultReporter()
    let fanoutKey: [UInt8]

    init(
        directory: String, databasePath: String, epoch: UInt64, idEpoch: UInt64, checkpointSeq: Int64,
        fanoutKey: [UInt8], options: StoreOptions
    ) {
        self.fanoutKey = fanoutKey
        self.directory = directory
        self.databasePath = databasePath
        self.epoch = epoch
        self.idEpoch = idEpoch
        self.options = options
        overlay = OverlayLock(ProjectionOverlay(baseSeq: checkpointSeq))
        blocks = BlockCache(capacityBytes: options.blockCacheBytes)
        derivedIDs = DerivedEventID(epoch: idEpoch)
    }

    /// The event's id as text: the client's, or the one derived from its seq.
    func idText(seq: Int64, record: LogRecord) -> [UInt8] {
        record.explicitID ?? derivedIDs.text(seq: seq)
    }

    func logReader(_ database: Database, cached: Bool = true) -> LogReader {
        LogReader(database: database, dictionaries: dictionaries, cache: cached ? blocks : nil)
    }

    /// A stored event in its public form from a record read in place.
    func storedEvent(
        seq: Int64, view record: RecordView, database: Database, counts: InboxCounts?, anchor: CursorAnchor
    ) throws -> StoredEvent {
        try StoredEvent(
            seq: seq, view: record, userID: try users.name(record.userNo, database: database), derivedIDs: derivedIDs,
            counts: counts, anchor: anchor)
    }

    /// A stored event in its public form (`counts` as given).
    func storedEvent(
        seq: Int64, record: LogRecord, database: Database, counts: InboxCounts?, anchor: CursorAnchor
    ) throws -> StoredEvent {
        try StoredEvent(
            seq: seq, record: record, userID: try users.name(record.userNo, database: database), derivedIDs: derivedIDs,
            counts: counts, anchor: anchor)
    }

    /// Configures a freshly opened connection: the writer's (durability, WAL size) or a
    /// reader's (its memory map), each with its page cache.
    func configure(_ database: Database, pageCacheBytes: Int, writer: Bool = false) throws {
        try database.execute("PRAGMA cache_size = \(-(pageCacheBytes / 1024))")
        if !writer && options.readMapBytes > 0 {
            try database.execute("PRAGMA mmap_size = \(options.readMapBytes)")
        }
        if writer {
            try database.execute("PRAGMA synchronous = \(options.durability == .full ? "FULL" : "NORMAL")")
            try database.execute("PRAGMA journal_size_limit = \(Self.walBytesKept)")
        }
    }

    /// What the WAL file is truncated to after a checkpoint: larger WAL files are given back
    /// to the file system.
    static let walBytesKept = 64 * 1024 * 1024
}
