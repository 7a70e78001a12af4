import TidingsStore

/// The writer's view of the log: loading its state, sealing blocks, catching up with other
/// processes, and checkpointing the projection.
extension LogWriter {
    /// Record bytes of the store's early events that make its compression dictionary.
    static let dictionaryBytes = 64 * 1024

    func loadDictionary() throws {
        let statement = try database.prepare(
            "SELECT dictionary_id, bytes FROM dictionaries ORDER BY dictionary_id DESC LIMIT 1")
        guard try statement.step() else { return }
        let id = statement.int64(0)
        guard id != dictionaryID else { return }
        dictionaryID = id
        compressor = LZ4Compressor(dictionary: statement.bytes(1))
    }

    /// Loads the unsealed events from the `tail` table.
    func loadTail() throws {
        let statement = try database.prepare("SELECT seq, raw_bytes, record, hash FROM tail ORDER BY seq")
        var loaded: [PendingEvent] = []
        while try statement.step() {
            let seq = statement.int64(0)
            loaded.append(
                PendingEvent(
                    seq: seq, record: try LogReader.decodeTailRecord(statement.blob(2), seq: seq),
                    hash: statement.bytes(3), rawSize: statement.int(1)))
        }
        tail = loaded
    }

    /// Writes committed-to-be events: seals full blocks from the tail and the new events, and
    /// keeps the rest in the tail. Returns the new sealed seq.
    func writeEvents(_ events: [PendingEvent], sealedSeq: Int64) throws -> Int64 {
        var all = tail
        all += events
        var blocks: [Block] = []
        var start = 0
        var bytes = 0
        for index in all.indices {
            bytes += all[index].record.transformedData.count + 12
            guard bytes >= context.options.blockTargetBytes else { continue }
            if dictionaryID == 0 { try createDictionaryIfDue(unsealed: all[0...index], sealing: all[start...index]) }
            let block = Block.seal(all[start...index], compressor: compressor, dictionaryID: dictionaryID)
            if dictionaryID == 0 { sealedRecordBytes += Int64(block.recordsBytes) }
            blocks.append(block)
            start = index + 1
            bytes = 0
        }
        for block in blocks { try block.insert(into: database) }
        var newSealed = sealedSeq
        if let last = blocks.last {
            newSealed = last.lastSeq
            if let first = tail.first, first.seq <= newSealed {
                let statement = try database.cached("DELETE FROM tail WHERE seq <= ?1")
                statement.bind(1, newSealed)
                try statement.run()
            }
        }
        let remaining = all[start...]
        let insert = try database.cached(
            "INSERT INTO tail (seq, ts, raw_bytes, record, hash) VALUES (?1, ?2, ?3, ?4, ?5)")
        var encoded: [UInt8] = []
        for event in remaining where event.seq > (tail.last?.seq ?? 0) {
            encoded.removeAll(keepingCapacity: true)
            event.record.encode(previousTimestamp: 0, into: &encoded)
            insert.bind(1, event.seq)
            insert.bind(2, event.record.timestampMilliseconds)
            insert.bind(3, event.rawSize)
            insert.bind(4, blob: encoded)
            insert.bind(5, blob: event.hash)
            try insert.run()
        }
        tail = Array(remaining)
        return newSealed
    }

    /// Makes the store's dictionary from its first records once there are enough of them.
    /// `unsealed` are this write's events so far (some already sealed into blocks of this
    /// transaction), `sealing` the ones about to be.
    private func createDictionaryIfDue(unsealed: ArraySlice<PendingEvent>, sealing: ArraySlice<PendingEvent>) throws {
        let upcomingBytes = sealing.reduce(0) { $0 + $1.record.transformedData.count + 12 }
        guard sealedRecordBytes + Int64(upcomingBytes) >= Self.dictionaryBytes else { return }
        var sample: [UInt8] = []
        sample.reserveCapacity(Self.dictionaryBytes)
        let reader = context.logReader(database, cached: false)
        try reader.scan(after: 0, through: head.sealedSeq, sealedSeq: head.sealedSeq) { entry in
            entry.record.encode(previousTimestamp: entry.record.timestampMilliseconds, into: &sample)
            return sample.count < Self.dictionaryBytes
        }
        for event in unsealed where sample.count < Self.dictionaryBytes {
            event.record.encode(previousTimestamp: event.record.timestampMilliseconds, into: &sample)
        }
        if sample.count > Self.dictionaryBytes { sample.removeLast(sample.count - Self.dictionaryBytes) }
        let statement = try database.cached("INSERT INTO dictionaries (dictionary_id, bytes) VALUES (?1, ?2)")
        statement.bind(1, Int64(1))
        statement.bind(2, blob: sample)
        try statement.run()
        dictionaryID = 1
        compressor = LZ4Compressor(dictionary: sample)
    }

    /// Brings this writer up to date with the database: events other processes appended, a
    /// checkpoint or rebuild another process wrote. Runs inside a transaction.
    func synchronize() throws {
        let current = try LogSnapshot.read(database)
        if current.projectionGeneration != head.projectionGeneration {
            // Another process rebuilt the projection: start over from its checkpoint.
            context.overlay.withLock { $0.reset(baseSeq: current.checkpointSeq) }
            try catchUp(to: current)
        } else if current.headSeq != context.overlay.withLock({ $0.committedSeq })
            || current.sealedSeq != head.sealedSeq
            || current.headSeq != head.headSeq
        {
            try catchUp(to: current)
        }
        let overlayBase = context.overlay.withLock { $0.baseSeq }
        if current.checkpointSeq > overlayBase {
            context.overlay.withLock { $0.rebase(to: current.checkpointSeq) }
        }
        head = current
    }

    /// Applies committed events this process has not seen to the overlay and reloads the tail.
    private func catchUp(to current: LogSnapshot) throws {
        let from = context.overlay.withLock { $0.committedSeq }
        if current.headSeq > from {
            let reader = context.logReader(database, cached: false)
            try reader.scan(after: from, through: current.headSeq, sealedSeq: current.sealedSeq) { entry in
                try applyCommitted(seq: entry.seq, record: entry.record, sealedSeq: current.sealedSeq)
                return true
            }
            context.overlay.withLock { $0.commit() }
        }
        try loadTail()
        try loadDictionary()
    }

    /// Replays one event already in the log into the overlay.
    func applyCommitted(seq: Int64, record: LogRecord, sealedSeq: Int64) throws {
        let lower = context.overlay.withLock { $0.baseSeq }
        let reader = context.logReader(database)
        let view = ProjectionView(
            base: ProjectionBase(database: database), overlay: context.overlay, lower: lower, upper: .max,
            eventData: { try reader.data(seq: $0, sealedSeq: sealedSeq) })
        try context.overlay.replay(seq: seq, record: record, view: view)
    }

    /// Catches up with other processes outside a write (for readers that saw a newer head).
    func synchronizeForReaders() throws {
        try database.transaction(.deferred) { try synchronize() }
    }

    /// Writes the overlay into the base tables once it holds enough events. A failure is
    /// reported (nobody waits for this checkpoint) and tried again after the next group.
    func checkpointIfDue() {
        let due = context.overlay.withLock { $0.eventsSinceBase >= Int64(context.options.checkpointEvents) }
        if due { _ = checkpointReporting() }
    }

    /// Checkpoints, reporting a failure or a recovery to the store's fault listeners; returns
    /// the failure.
    func checkpointReporting() -> (any Error)? {
        do {
            try checkpoint()
            context.faults.succeeded(.projectionCheckpoint)
            return nil
        } catch {
            context.faults.failed(.projectionCheckpoint, error)
            return error
        }
    }

    /// Nil while the overlay is within its bound; otherwise checkpoints first, and when that
    /// fails too, the error every append must get until a checkpoint succeeds.
    func overlayRefusal() -> StoreError? {
        let held = context.overlay.withLock { $0.eventsSinceBase }
        guard held >= Int64(context.options.overlayEventsMax), let error = checkpointReporting() else { return nil }
        return StoreError(
            .unavailable,
            "appends are paused: the projection holds \(held) events in memory and its checkpoint fails (\(error)); they go on once it succeeds"
        )
    }

    /// Writes every committed overlay event into the base tables, in one transaction.
    func checkpoint() throws {
        try context.options.beforeCheckpoint?()
        let written: Int64? = try database.transaction(.immediate) {
            try synchronize()
            let (from, to, events) = context.overlay.withLock { overlay in
                (
                    overlay.baseSeq, overlay.committedSeq,
                    Array(overlay.events(after: overlay.baseSeq, through: overlay.committedSeq))
                )
            }
            guard to > from else { return nil }
            try ProjectionCheckpoint(events: events[...], from: from).write(to: ProjectionBase(database: database))
            var updated = head
            updated.checkpointSeq = to
            try updated.write(database)
            return to
        }
        guard let written else { return }
        head.checkpointSeq = written
        context.overlay.withLock { $0.rebase(to: written) }
    }
}
