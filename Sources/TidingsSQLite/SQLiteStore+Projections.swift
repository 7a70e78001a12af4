import Synchronization
public import TidingsStore

extension SQLiteStore {
    /// Rows a rebuild writes per transaction, so appends wait at most that long.
    static let rebuildRowsPerTransaction = 50_000

    /// The online rebuild job, if one ever ran since the store was opened.
    public var rebuildJob: RebuildJob? { rebuildJobState.job.withLock { $0 } }

    /// Starts an online rebuild in the background; `conflict` while one runs.
    public func startProjectionRebuild() throws -> RebuildJob {
        try rebuildJobState.start(now: context.options.clock) { progress in
            try await self.rebuildProjections(progress: progress)
        }
    }

    /// Rebuilds the projection from the log while appends and reads go on: computes it in
    /// memory from a snapshot, writes it into shadow tables in short transactions, then in one
    /// short transaction applies the events appended meanwhile and swaps the tables in.
    public func rebuildProjections(progress: (@Sendable (RebuildProgress) -> Void)? = nil) async throws {
        let state = try await scans.read { database in
            try database.readSnapshot { try self.rebuildState(database, progress: progress) }
        }
        try await writer.perform { writer in try writer.createShadowTables() }
        var rows = RebuildRows(state)
        var written = 0
        while !rows.isDone {
            let (next, count) = try await writer.perform { [rows] writer in
                var slice = rows
                var count = 0
                try writer.database.transaction(.immediate) {
                    let shadow = ProjectionBase(database: writer.database, prefix: LogWriter.shadowPrefix)
                    count = try slice.write(to: shadow, rowsMax: Self.rebuildRowsPerTransaction)
                }
                return (slice, count)
            }
            rows = next
            written += count
            progress?(RebuildProgress(phase: .writing, processed: Int64(written), total: Int64(rows.rowCount)))
        }
        try await writer.perform { writer in try writer.swapInShadowTables(builtThrough: state.lastSeq) }
        progress?(RebuildProgress(phase: .swapping, processed: state.lastSeq, total: state.lastSeq))
        // Give the replaced tables' pages back, a slice at a time so appends go on between.
        while try await writer.perform({ writer in try writer.releaseFreePages(Self.freePagesPerStep) }) {}
    }

    /// Free pages released per writer job after a rebuild.
    static let freePagesPerStep = 2_000

    /// The same, blocking the calling thread; for opening a store whose projection is stale.
    func rebuildProjectionsNow(progress: (@Sendable (RebuildProgress) -> Void)?) throws {
        try writer.performSync { writer in
            // Nothing else reads or writes the store while it opens: the writer's connection
            // reads the log.
            let state = try writer.database.readSnapshot {
                try self.rebuildState(writer.database, progress: progress)
            }
            try writer.createShadowTables()
            var rows = RebuildRows(state)
            try writer.database.transaction(.immediate) {
                _ = try rows.write(to: ProjectionBase(database: writer.database, prefix: LogWriter.shadowPrefix))
            }
            try writer.swapInShadowTables(builtThrough: state.lastSeq)
            while try writer.releaseFreePages(Self.freePagesPerStep) {}
        }
    }

    /// The projection computed in memory from the log in the caller's snapshot.
    func rebuildState(_ database: Database, progress: (@Sendable (RebuildProgress) -> Void)?) throws -> RebuildState {
        let snapshot = try LogSnapshot.read(database)
        let usersMax = try database.cached("SELECT coalesce(max(user_no), 0) FROM users")
        _ = try usersMax.step()
        var state = RebuildState(events: snapshot.headSeq, usersMax: usersMax.int64(0))
        usersMax.reset()
        var reported: Int64 = 0
        let reader = context.logReader(database)
        try scanRecords(database, snapshot, after: 0) { seq, record in
            try state.apply(seq: seq, record: record) { kind, _, createdSeq in
                NotificationKind.matches(kind, data: try reader.data(seq: createdSeq, sealedSeq: snapshot.sealedSeq))
            }
            if seq - reported >= 65_536 {
                reported = seq
                progress?(RebuildProgress(phase: .reading, processed: seq, total: snapshot.headSeq))
            }
            return true
        }
        progress?(RebuildProgress(phase: .reading, processed: snapshot.headSeq, total: snapshot.headSeq))
        return state
    }

    /// Rebuilds the projection in memory and compares it with the live one, user by user.
    public func verifyProjections() async throws -> ProjectionVerification {
        try await withSnapshot(.scan) { read in
            try ProjectionComparison.compare(
                try self.rebuildState(read.database, progress: nil),
                live: { userNo in
                    ProjectionComparison.LiveUser(
                        head: try read.view.head(user: userNo),
                        states: try read.view.stateTest(user: userNo).select(mask: 0, value: 0, through: .max),
                        entries: try read.view.entries(user: userNo, afterStreamSeq: 0, limit: .max))
                },
                userName: { try self.context.users.name($0, database: read.database) })
        }
    }

}

extension LogWriter {
    static let shadowPrefix = "rebuild_"

    /// Returns up to `pages` free pages to the file system; true while more remain.
    func releaseFreePages(_ pages: Int) throws -> Bool {
        try database.execute("PRAGMA incremental_vacuum(\(pages))")
        let statement = try database.prepare("PRAGMA freelist_count")
        _ = try statement.step()
        defer { statement.reset() }
        return statement.int(0) > 0
    }

    func createShadowTables() throws {
        try database.transaction(.immediate) {
            for table in Schema.projectionTables(prefix: Self.shadowPrefix) {
                try database.execute("DROP TABLE IF EXISTS \(Self.shadowPrefix)\(table.name)")
                try database.execute(table.ddl)
            }
        }
    }

    /// In one transaction: brings the shadow tables (built through `builtThrough`) up to the
    /// head, replaces the live tables with them, and starts the overlay afresh.
    func swapInShadowTables(builtThrough: Int64) throws {
        let generation: Int64 = try database.transaction(.immediate) {
            try synchronize()
            let shadow = ProjectionBase(database: database, prefix: Self.shadowPrefix)
            if head.headSeq > builtThrough {
                // Replay the events appended since the snapshot onto the shadow tables, with the
                // live machinery: a scratch overlay over the shadow base.
                let scratch = OverlayLock(ProjectionOverlay(baseSeq: builtThrough))
                let reader = context.logReader(database)
                let sealedSeq = head.sealedSeq
                try context.logReader(database, cached: false).scan(
                    after: builtThrough, through: head.headSeq, sealedSeq: head.sealedSeq
                ) { entry in
                    let view = ProjectionView(
                        base: shadow, overlay: scratch, lower: builtThrough, upper: .max,
                        eventData: { try reader.data(seq: $0, sealedSeq: sealedSeq) })
                    try scratch.replay(seq: entry.seq, record: entry.record, view: view)
                    return true
                }
                let events = scratch.withLock { Array($0.events(after: builtThrough, through: $0.topSeq)) }
                try ProjectionCheckpoint(events: events[...], from: builtThrough).write(to: shadow)
            }
            for table in Schema.projectionTables(prefix: "") {
                try database.execute("DROP TABLE \(table.name)")
                try database.execute("ALTER TABLE \(Self.shadowPrefix)\(table.name) RENAME TO \(table.name)")
            }
            try database.execute(Schema.statesSnoozedIndex(prefix: ""))
            var updated = head
            updated.checkpointSeq = head.headSeq
            updated.projectionGeneration += 1
            try updated.write(database)
            try database.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('projection_version', \(SQLiteStore.projectionVersion))"
            )
            return updated.projectionGeneration
        }
        head.checkpointSeq = head.headSeq
        head.projectionGeneration = generation
        context.overlay.withLock { $0.reset(baseSeq: head.headSeq) }
    }
}
