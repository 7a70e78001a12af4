import Hummingbird
import Logging
import TidingsStore

extension APIRoutes {
    /// `GET /v1/log/verify?seq=&hash=`.
    func verifyLog(_ request: Request, _ context: TidingsRequestContext) async throws -> Response {
        let principal = try principal(request, context)
        try require(principal.role.mayAudit)
        let query = request.uri.queryParameters
        var checkpoint: (seq: Int64, hash: [UInt8])?
        switch (query.get("seq"), query.get("hash")) {
        case (nil, nil): break
        case (let seq?, let hash?):
            guard let seq = Int64(seq), seq >= 0 else {
                throw APIError.badRequest("seq must be a non-negative integer")
            }
            guard let bytes = HashChain.parseHex(hash) else {
                throw APIError.badRequest("hash must be 64 lowercase hex digits")
            }
            checkpoint = (seq, bytes)
        default:
            throw APIError.badRequest("seq and hash go together")
        }
        let result = try await storeCall { try await store.verifyLog(checkpoint: checkpoint, progress: nil) }
        if !result.ok {
            context.logger.error(
                "log verification found damage",
                metadata: ["first_bad_seq": "\(result.firstBadSeq ?? 0)", "problem": "\(result.problem ?? "")"])
        }
        var writer = JSONWriter()
        writer.field("ok", result.ok)
        writer.field("events", result.events)
        writer.field("blocks", result.blocks)
        writer.field("head_seq", result.headSeq)
        writer.field("head_hash", result.headHash)
        if let bad = result.firstBadSeq { writer.field("first_bad_seq", bad) }
        if let ok = result.checkpointOK { writer.field("checkpoint_ok", ok) }
        return Self.json(writer.finish())
    }

    /// `GET /v1/stats`.
    func stats(_ request: Request, _ context: TidingsRequestContext) async throws -> Response {
        let principal = try principal(request, context)
        try require(principal.role.mayAudit)
        let stats = try await storeCall { try await store.stats() }
        var writer = JSONWriter()
        writer.field("events", stats.events)
        writer.field("users", stats.users)
        writer.field("blocks", stats.blocks)
        writer.field("raw_bytes", stats.rawBytes)
        writer.field("stored_bytes", stats.storedBytes)
        writer.field("compression_ratio", (stats.compressionRatio * 1000).rounded() / 1000)
        writer.field("live_connections", sessions.count)
        // Beyond the protocol's fields: the `all` stream's head, so a console can tail the log
        // from now on (a hello with a null cursor would replay all of it).
        writer.field("head_seq", stats.events)
        writer.field("head", store.allCursor(seq: stats.events, anchor: stats.head))
        return Self.json(writer.finish())
    }

    /// `POST /v1/admin/projections/rebuild`.
    func startRebuild(_ request: Request, _ context: TidingsRequestContext) async throws -> Response {
        let principal = try principal(request, context)
        try require(principal.role == .admin)
        try await emptyBody(request)
        let job = try await storeCall { try store.startProjectionRebuild() }
        context.logger.info("projection rebuild started")
        var writer = JSONWriter()
        writer.rawField("job", Self.jobJSON(job))
        return Self.json(writer.finish(), status: .accepted)
    }

    /// `GET /v1/admin/projections/rebuild`.
    func rebuildState(_ request: Request, _ context: TidingsRequestContext) async throws -> Response {
        let principal = try principal(request, context)
        try require(principal.role == .admin)
        var writer = JSONWriter()
        if let job = store.rebuildJob {
            writer.rawField("job", Self.jobJSON(job))
        } else {
            writer.nullField("job")
        }
        return Self.json(writer.finish())
    }

    /// `POST /v1/admin/projections/verify`.
    func verifyProjections(_ request: Request, _ context: TidingsRequestContext) async throws -> Response {
        let principal = try principal(request, context)
        try require(principal.role == .admin)
        try await emptyBody(request)
        let result = try await storeCall { try await store.verifyProjections() }
        var writer = JSONWriter()
        writer.field("ok", result.ok)
        writer.field("users_checked", result.usersChecked)
        writer.arrayField(
            "mismatches",
            result.mismatches.map { mismatch in
                var item = JSONWriter()
                item.field("user_id", mismatch.userID)
                item.field("field", mismatch.field)
                item.field("live", mismatch.live)
                item.field("rebuilt", mismatch.rebuilt)
                return item.finish()
            })
        return Self.json(writer.finish())
    }

    static func jobJSON(_ job: RebuildJob) -> [UInt8] {
        var writer = JSONWriter()
        writer.field("state", job.state.rawValue)
        writer.field("phase", job.phase.rawValue)
        writer.field("processed", job.processed)
        writer.field("total", job.total)
        writer.field("started_at", Timestamp.format(milliseconds: job.startedAt))
        if let finished = job.finishedAt { writer.field("finished_at", Timestamp.format(milliseconds: finished)) }
        if let error = job.error { writer.field("error", error) }
        return writer.finish()
    }
}
