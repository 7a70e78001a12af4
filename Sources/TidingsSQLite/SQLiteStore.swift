import Dispatch
import Foundation
import Synchronization
public import TidingsStore

/// The embedded engine: a Tidings store (`EventStore`) in one directory, nothing else to
/// install. This module has no networking; the server and the CLI sit on its interface.
///
/// Layout and design: docs/STORAGE.md. In short, one SQLite database in WAL mode; events are
/// sealed into small LZ4 blocks (primed with a dictionary of the store's own records) plus an
/// unsealed tail; a SHA-256 chain covers every event; a single writer per process group-commits
/// concurrent appends; the projection's base tables are checkpointed every few thousand events
/// and the events since live in an in-memory overlay, so a durable append writes its blocks
/// and nothing else.
public final class SQLiteStore: EventStore {
    /// Bump when the projection's rules or tables change: stores built by an older version are
    /// rebuilt from the log when opened.
    public static let projectionVersion = 2
    public static let databaseFileName = "tidings.sqlite"

    let context: StoreContext
    let writer: LogWriter
    /// Short reads: unread state, pages, stream starts and replays, the log watcher, stats.
    let shortReads: ReadLane
    /// Long scans: exports (a run of blocks at a time), log and projection verification, the
    /// rebuild's read of the log.
    let scans: ReadLane
    let rebuildJobState: RebuildJobState

    /// The store's epoch, as carried by every cursor.
    public var epoch: UInt64 { context.epoch }
    public var directory: String { context.directory }
    /// The short-read lane and the scan lane, with how long their reads have waited.
    public var readLaneStatistics: [ReadLaneStatistics] { [shortReads.statistics, scans.statistics] }
    /// A secret of this store (32 bytes), shared by every process that opens it: live-event
    /// messages between processes are signed with it.
    public var fanoutKey: [UInt8] { context.fanoutKey }

    private init(context: StoreContext, writer: LogWriter) {
        self.context = context
        self.writer = writer
        let options = context.options
        shortReads = ReadLane(
            context: context,
            configuration: .init(
                name: "short reads", label: "short", connectionsMax: options.shortReadersMax,
                waitingMax: options.readsWaitingMax,
                pageCacheBytes: options.pageCacheBytes))
        scans = ReadLane(
            context: context,
            configuration: .init(
                name: "scans", label: "scan", connectionsMax: options.scanReadersMax,
                waitingMax: options.readsWaitingMax,
                pageCacheBytes: min(options.pageCacheBytes, options.scanPageCacheBytes)))
        rebuildJobState = RebuildJobState()
    }

    /// Opens the store in `directory`, creating it (and the directory) when missing.
    ///
    /// Opening checks the newest block and the tail against the hash chain and refuses a
    /// damaged log; it rebuilds the projection when it was built by another projection version.
    public static func open(
        directory: String, options: StoreOptions = StoreOptions(),
        rebuildProgress: (@Sendable (RebuildProgress) -> Void)? = nil
    ) async throws -> SQLiteStore {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue(label: "tidings.open").async {
                continuation.resume(
                    with: Result {
                        try openNow(directory: directory, options: options, rebuildProgress: rebuildProgress)
                    })
            }
        }
    }

    private static func openNow(
        directory: String, options: StoreOptions, rebuildProgress: (@Sendable (RebuildProgress) -> Void)?
    ) throws -> SQLiteStore {
        try Directories.create(directory)
        let path = (directory as NSString).appendingPathComponent(databaseFileName)
        let database = try Database(
            path: path, mode: .readWrite, busyTimeoutMilliseconds: options.busyTimeoutMilliseconds)
        do {
            // Takes effect only for a new, empty database: larger pages mean fewer, larger writes
            // for the block rows, which are a few KiB each.
            try database.execute("PRAGMA page_size = \(options.pageSizeBytes)")
            // Also only for a new database: lets a rebuild hand the pages of the replaced tables
            // back to the file system instead of leaving them free inside the file.
            try database.execute("PRAGMA auto_vacuum = INCREMENTAL")
            let mode = try database.prepare("PRAGMA journal_mode = WAL")
            _ = try mode.step()
            let journalMode = mode.string(0).lowercased()
            mode.reset()
            guard journalMode == "wal" else {
                throw StoreError(.unavailable, "\(path) cannot use write-ahead logging (journal mode \(journalMode))")
            }
            try Schema.migrate(database)
            let identity = try loadOrCreateIdentity(database)
            let snapshot = try LogSnapshot.read(database)
            let context = StoreContext(
                directory: directory, databasePath: path, epoch: identity.epoch, idEpoch: identity.idEpoch,
                checkpointSeq: snapshot.checkpointSeq, fanoutKey: identity.fanoutKey, options: options)
            try context.configure(database, pageCacheBytes: options.pageCacheBytes, writer: true)
            let writer = try LogWriter(context: context, database: database)
            let store = SQLiteStore(context: context, writer: writer)
            try writer.performSync { writer in
                try writer.verifyNewestEvents()
                try writer.synchronizeForReaders()
            }
            if identity.projectionVersion != projectionVersion {
                try store.rebuildProjectionsNow(progress: rebuildProgress)
            }
            return store
        } catch {
            database.close()
            if let error = error as? SQLiteError, error.isCorruption {
                throw StoreError(
                    .internal, "\(path) is damaged: \(error.message); run `tidings verify --data \(directory)`")
            }
            throw error
        }
    }

    /// Reads the store's epochs and projection version, creating them for a new store.
    private static func loadOrCreateIdentity(
        _ database: Database
    ) throws -> (epoch: UInt64, idEpoch: UInt64, projectionVersion: Int, fanoutKey: [UInt8]) {
        try database.transaction(.immediate) {
            let read = try database.prepare("SELECT value FROM meta WHERE key = ?1")
            func value(_ key: String) throws -> Int64? {
                read.reset()
                read.bind(1, key)
                defer { read.reset() }
                return try read.step() ? read.int64(0) : nil
            }
            let write = try database.prepare("INSERT INTO meta (key, value) VALUES (?1, ?2)")
            // The key processes sharing this store sign their live-event messages with.
            let keyStatement = try database.prepare("SELECT value FROM meta WHERE key = 'fanout_key'")
            var fanoutKey: [UInt8] = try keyStatement.step() ? keyStatement.bytes(0) : []
            keyStatement.reset()
            if fanoutKey.count != 32 {
                var generator = SystemRandomNumberGenerator()
                fanoutKey = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
                let insert = try database.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('fanout_key', ?1)")
                insert.bind(1, blob: fanoutKey)
                try insert.run()
            }
            if let epoch = try value("epoch") {
                // `id_epoch` is written by the first restore; before it the two are one.
                let idEpoch = try value("id_epoch") ?? epoch
                return (
                    UInt64(bitPattern: epoch), UInt64(bitPattern: idEpoch), Int(try value("projection_version") ?? 0),
                    fanoutKey
                )
            }
            let epoch = UInt64.random(in: 1...UInt64.max)
            for (key, number) in [
                ("epoch", Int64(bitPattern: epoch)), ("created_at", WallClock.nowMilliseconds()),
                ("projection_version", Int64(projectionVersion)),
            ] {
                write.reset()
                write.bind(1, key)
                write.bind(2, number)
                try write.run()
            }
            return (epoch, epoch, projectionVersion, fanoutKey)
        }
    }

    /// Finishes queued appends, writes a checkpoint and closes the database.
    public func close() {
        writer.close()
        shortReads.close()
        scans.close()
        writer.performSync { writer in
            // The events since the last checkpoint are safe in the log either way (the next
            // open replays them); a failure is reported, not thrown, so the store still closes.
            _ = writer.checkpointReporting()
            do {
                try writer.database.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            } catch {
                context.faults.failed(.walCheckpoint, error)
            }
            writer.database.close()
        }
        context.commitFeed.removeAll()
        context.faults.removeAll()
    }

    // MARK: Appending

    /// Appends one event or a batch, atomically: every event is checked first (413, then 400,
    /// with the failing event's index), then each in order is appended, found to be a
    /// `duplicate` of an earlier event with its id, or is a `noop`; a conflict fails the whole
    /// request. Returns after the transaction is durably committed.
    public func append(_ events: [NewEvent]) async throws -> [AppendResult] {
        let validated = try AppendBatch.validate(events)
        return try await writer.append(LogWriter.AppendRequest(events: validated)).results
    }
}
