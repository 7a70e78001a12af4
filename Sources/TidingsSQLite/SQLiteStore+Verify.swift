public import TidingsStore

extension SQLiteStore {
    /// Recomputes the whole hash chain and checks every block, and optionally whether the log
    /// still holds a head an auditor recorded earlier (`seq`, `hash`).
    public func verifyLog(
        checkpoint: (seq: Int64, hash: [UInt8])? = nil, progress: (@Sendable (Int64, Int64) -> Void)? = nil
    ) async throws -> LogVerification {
        try await scans.read { database in
            try database.readSnapshot { try self.verifyLogNow(database, checkpoint: checkpoint, progress: progress) }
        }
    }

    private func verifyLogNow(
        _ database: Database, checkpoint: (seq: Int64, hash: [UInt8])?, progress: (@Sendable (Int64, Int64) -> Void)?
    ) throws -> LogVerification {
        let head = try LogSnapshot.read(database)
        var verifier = ChainVerifier(
            database: database, context: context, startingAfter: 0, previousHash: HashChain.genesis)
        var checkpointHash: [UInt8]? = checkpoint?.seq == 0 ? HashChain.genesis : nil
        if let checkpoint, checkpoint.seq > 0 {
            verifier.onEvent = { seq, hash in
                if seq == checkpoint.seq { checkpointHash = hash }
            }
        }
        var damage: ChainVerifier.Damage?
        do {
            try verifier.verifyBlocks { progress?($0, head.headSeq) }
            try verifier.verifyTail()
            try verifier.verifyHead(head)
        } catch {
            damage = error
        }
        progress?(head.headSeq, head.headSeq)
        let ok = damage == nil
        var checkpointOK: Bool?
        if let checkpoint {
            checkpointOK = checkpoint.seq <= head.headSeq && checkpointHash == checkpoint.hash
        }
        return LogVerification(
            ok: ok, events: head.headSeq, blocks: verifier.blocks, headSeq: head.headSeq,
            headHash: HashChain.hex(ok ? verifier.previousHash : head.headHash), firstBadSeq: damage?.seq,
            problem: damage?.problem, checkpointOK: checkpointOK)
    }
}

extension LogWriter {
    /// Checks the newest block and the tail against the chain, so a store whose newest writes
    /// were damaged (a torn or corrupted file) is refused instead of served. `tidings verify`
    /// checks everything.
    func verifyNewestEvents() throws {
        try database.readSnapshot {
            let head = try LogSnapshot.read(database)
            let statement = try database.prepare(
                "SELECT first_seq, end_hash FROM blocks ORDER BY first_seq DESC LIMIT 2")
            var rows: [(Int64, [UInt8])] = []
            while try statement.step() { rows.append((statement.int64(0), statement.bytes(1))) }
            let startAfter = rows.first.map { $0.0 - 1 } ?? 0
            let previousHash = rows.count == 2 ? rows[1].1 : HashChain.genesis
            var verifier = ChainVerifier(
                database: database, context: context, startingAfter: startAfter, previousHash: previousHash)
            do {
                try verifier.verifyBlocks()
                try verifier.verifyTail()
                try verifier.verifyHead(head)
            } catch let damage as ChainVerifier.Damage {
                let directory = context.directory
                throw StoreError(
                    .internal,
                    "the log in \(directory) is damaged at seq \(damage.seq): \(damage.problem). Run `tidings verify --data \(directory)` for a full report; restore from a backup"
                )
            }
        }
    }
}
