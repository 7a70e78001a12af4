public import Logging
import NIOCore
import PostgresNIO
import Synchronization
public import TidingsStore

/// The PostgreSQL engine: any number of nodes on any number of hosts serve one store kept in
/// one PostgreSQL database. The log is the same compressed, hash-chained blocks as on SQLite;
/// commits from every node are serialized on the head row, so `seq` is gapless and in commit
/// order; after each commit a node notifies the others (`NOTIFY tidings_log`), which read the
/// new events from the log for their live streams.
public final class PostgresStore: EventStore {
    let servers: PostgresServers
    let context: PostgresContext
    let writer: PostgresWriter
    private let listener: LogListener
    let rebuildJobState = RebuildJobState()

    public var epoch: UInt64 { context.epoch }
    public var fanoutKey: [UInt8] { context.fanoutKey }
    /// PostgreSQL queues reads in its own pool; none of the SQLite engine's lanes.
    public var readLaneStatistics: [ReadLaneStatistics] { [] }
    public var rebuildJob: RebuildJob? { rebuildJobState.job.withLock { $0 } }
    public var location: PostgresLocation { servers.location }

    private init(servers: PostgresServers, context: PostgresContext) {
        self.servers = servers
        self.context = context
        writer = PostgresWriter(servers: servers, context: context)
        listener = LogListener(servers: servers, context: context)
    }

    /// Connects to the primary of `location`, creating the store's tables in a new database.
    public static func open(
        _ location: PostgresLocation, options: PostgresOptions = PostgresOptions(),
        logger: Logger = Logger(label: "tidings.postgres")
    ) async throws -> PostgresStore {
        let servers = PostgresServers(
            location: location, connectionsMax: options.connectionsMax, callDeadline: options.callDeadline,
            logger: logger)
        do {
            let (identity, upgradedFrom) = try await servers.withConnection { connection in
                try await connection.transaction(logger: logger) { connection in
                    try await Self.migrate(connection, logger: logger)
                }
            }
            let context = PostgresContext(
                epoch: identity.epoch, fanoutKey: identity.fanoutKey, options: options, logger: logger)
            let store = PostgresStore(servers: servers, context: context)
            servers.onTimelineChange { [weak store] old, new in
                logger.warning(
                    "the PostgreSQL primary is on a new timeline (a standby was promoted): forgetting what this node cached of the log and checking the history it streamed",
                    metadata: ["old_timeline": "\(old)", "new_timeline": "\(new)"])
                store?.forgetCachedHistory()
                for listener in context.historyInDoubt.withLock({ $0 }) { listener() }
            }
            store.listener.start(outboxChanged: { [weak store] in store?.writer.outboxChanged() })
            if options.drainsOutbox { store.writer.outboxChanged() }
            if let upgradedFrom, upgradedFrom < 2 {
                // Schema 1 kept no kinds, which bulk events' kind filters read: the projection is
                // rebuilt from the log before this node serves, online (other nodes go on).
                logger.info(
                    "rebuilding the projection after the upgrade from schema \(upgradedFrom): kinds are read from the log"
                )
                try await store.rebuildProjections(progress: nil)
            }
            return store
        } catch {
            servers.shutdown()
            throw error
        }
    }

    /// Creates or updates the tables (under an advisory lock, so nodes starting together do
    /// it once) and reads the store's identity, making one for a new store. Returns the schema
    /// version it upgraded from, nil when it upgraded nothing.
    private static func migrate(
        _ connection: PostgresConnection, logger: Logger
    ) async throws -> (identity: (epoch: UInt64, fanoutKey: [UInt8]), upgradedFrom: Int64?) {
        try await connection.run("SELECT pg_advisory_xact_lock(\(PostgresSchema.schemaLock))", logger: logger)
        var upgradedFrom: Int64?
        let existing = try await connection.rows(
            "SELECT to_regclass('tidings_head') IS NOT NULL", as: Bool.self, logger: logger)
        if existing.first == true {
            // The head row first, as every group commit takes it first: a schema change below
            // takes table locks that running appends need, and must wait for them rather than
            // deadlock with one that holds the head and wants a table.
            let version = try await connection.rows(
                "SELECT schema_version FROM tidings_head WHERE id = 1 FOR UPDATE", as: Int64.self, logger: logger)
            if let version = version.first, version > PostgresSchema.version {
                throw StoreError(
                    .internal,
                    "the database holds a Tidings store of schema version \(version), newer than this tidings (\(PostgresSchema.version)); upgrade tidings"
                )
            }
            // A node joining a store of its own version changes nothing and locks no table.
            if version.first == PostgresSchema.version { return (try await identity(connection, logger: logger), nil) }
            upgradedFrom = version.first
        }
        for statement in PostgresSchema.statements {
            try await connection.run(PostgresQuery(unsafeSQL: statement), logger: logger)
        }
        let epoch = Int64(bitPattern: UInt64.random(in: 1...UInt64.max))
        let key = (0..<32).map { _ in UInt8.random(in: 0...255) }
        try await connection.run(
            """
            INSERT INTO tidings_head (id, schema_version, epoch, fanout_key, created_at, seq, hash, ts, next_user_no,
                dictionary_id, undictionaried_bytes, blocks, raw_bytes, stored_bytes, generation)
            VALUES (1, \(PostgresSchema.version), \(epoch), \(key.buffer), \(WallClock.nowMilliseconds()), 0,
                \(HashChain.genesis.buffer), 0, 1, 0, 0, 0, 0, 0, 0)
            ON CONFLICT (id) DO NOTHING
            """, logger: logger)
        try await connection.run(
            "UPDATE tidings_head SET schema_version = \(PostgresSchema.version) WHERE id = 1", logger: logger)
        return (try await identity(connection, logger: logger), upgradedFrom)
    }

    private static func identity(
        _ connection: PostgresConnection, logger: Logger
    ) async throws -> (epoch: UInt64, fanoutKey: [UInt8]) {
        let rows = try await connection.rows(
            "SELECT epoch, fanout_key FROM tidings_head WHERE id = 1", as: (Int64, ByteBuffer).self, logger: logger)
        return (UInt64(bitPattern: rows[0].0), rows[0].1.bytes)
    }

    public func close() {
        writer.close()
        listener.stop()
        context.commitFeed.removeAll()
        context.faults.removeAll()
        context.logAdvanced.withLock { $0.removeAll() }
        context.historyInDoubt.withLock { $0.removeAll() }
        servers.shutdown()
    }

    // MARK: Appending and marking

    public func append(_ events: [NewEvent]) async throws -> [AppendResult] {
        let validated = try AppendBatch.validate(events)
        return try await writer.append(AppendRequest(events: validated)).results
    }

    public func mark(userID: String, _ change: StateChange) async throws -> ReadOutcome {
        try Self.checkUser(userID)
        let events = try change.events(userID: userID)
        if events.isEmpty { return try await ReadOutcome.unchanged(userID: userID, store: self) }
        let validated = try AppendBatch.validate(events)
        guard case .notifications(let ids) = change.target else {
            let response = try await writer.append(
                AppendRequest(events: validated, collectMarked: true, reportUser: userID))
            let head = response.userHead ?? (0, .zero)
            return ReadOutcome(
                read: response.markedIDs, counts: head.counts,
                cursor: userCursor(userID, streamSeq: head.streamSeq, anchor: response.anchor),
                headStreamSeq: head.streamSeq, lastSeq: response.results.first?.event?.seq)
        }
        let response = try await writer.append(AppendRequest(events: validated, reportUser: userID))
        let head = response.userHead ?? (0, .zero)
        return ReadOutcome.of(
            read: ids, results: response.results, head: head,
            cursor: userCursor(userID, streamSeq: head.streamSeq, anchor: response.anchor))
    }

    // MARK: Listening

    public func onCommit(_ listener: @escaping @Sendable ([StoredEvent], CursorAnchor) -> Void) {
        context.commitFeed.add(listener)
    }

    public func onFault(_ listener: @escaping @Sendable (StoreFault) -> Void) {
        context.faults.add(listener)
    }

    public func onHistoryInDoubt(_ listener: @escaping @Sendable () -> Void) {
        context.historyInDoubt.withLock { $0.append(listener) }
    }

    public func onLogAdvanced(_ listener: @escaping @Sendable () -> Void) {
        context.logAdvanced.withLock { $0.append(listener) }
    }

    /// Forgets every cached block, dictionary and user name, and has live delivery look at the
    /// log at once (which finds out whether commits it streamed were lost).
    public func forgetCachedHistory() {
        context.forgetHistory()
        writer.forgetHistory()
        for listener in context.logAdvanced.withLock({ $0 }) { listener() }
    }
}
