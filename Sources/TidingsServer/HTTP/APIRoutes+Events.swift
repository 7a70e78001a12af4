import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import TidingsStore

extension APIRoutes {
    /// `POST /v1/events`: one event or `{"events":[...]}`.
    func appendEvents(_ request: Request, _ context: TidingsRequestContext) async throws -> Response {
        let principal = try principal(request, context)
        try require(principal.role.mayAppend)
        guard let body = try await body(request) else {
            throw APIError.badRequest("body must be one event or {\"events\":[...]}")
        }
        let started = ContinuousClock.now
        let results = try await storeCall {
            try await store.append(try EventDecoder.decodeAppendBody(body))
        }
        let appended = results.filter { $0.status == .appended }.count
        metrics.appended(events: appended, duration: ContinuousClock.now - started)
        var writer = JSONWriter(capacity: 600 * results.count)
        writer.arrayField(
            "results",
            results.map { result in
                var item = JSONWriter()
                item.field("status", result.status.rawValue)
                if let event = result.event { item.rawField("event", envelope(event, userStream: true)) }
                return item.finish()
            })
        return Self.json(writer.finish(), status: appended > 0 ? .created : .ok)
    }

    /// `GET /v1/events`: a page of the `all` stream, or all of it as NDJSON.
    func allEvents(_ request: Request, _ context: TidingsRequestContext) async throws -> Response {
        let principal = try principal(request, context)
        try require(principal.role.mayAudit)
        let query = request.uri.queryParameters
        var filter = EventFilter()
        for name in query.getAll("type") {
            guard let type = EventType(name: String(name)) else {
                throw APIError.badRequest(
                    "type must be notification.created, notification.read or notification.read_all, not \(name)")
            }
            filter.types.insert(type)
        }
        if let user = query.get("user_id") {
            guard Identifier.isValid(user) else { throw APIError.badRequest("user_id is not a valid user id") }
            filter.userID = user
        }
        for (name, keyPath) in [("since", \EventFilter.since), ("until", \EventFilter.until)] {
            guard let text = query.get(name) else { continue }
            guard let value = Timestamp.parse(text) else {
                throw APIError.badRequest("\(name) must be an RFC 3339 date-time")
            }
            filter[keyPath: keyPath] = value
        }
        let after = query.get("after")
        let accept = request.headers[.accept] ?? ""
        if accept.lowercased().contains("application/x-ndjson") {
            return try await export(after: after, filter: filter, context: context)
        }
        let limit = try limit(request)
        let page = try await storeCall { try await store.allEvents(after: after, filter: filter, limit: limit) }
        return self.page(page, userStream: false)
    }

    /// Streams every matching event as NDJSON. The body pulls one chunk at a time from the store
    /// (each a short read of its own) and writes it before it asks for the next, so memory stays
    /// bounded however long the log, a slow client slows only its own export, and nothing reads
    /// on once the response is gone. A failure after the first byte ends the response without
    /// its final chunk.
    private func export(after: String?, filter: EventFilter, context: TidingsRequestContext) async throws -> Response {
        // The cursor is checked before the first byte, so its errors are a proper 400/409.
        let export = try await storeCall { try await store.export(after: after, filter: filter) }
        let logger = context.logger
        var headers = HTTPFields()
        headers[.contentType] = "application/x-ndjson"
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                var chunks = export.makeAsyncIterator()
                while true {
                    let chunk: LogExport.Chunk?
                    do {
                        chunk = try await chunks.next()
                    } catch {
                        logger.error("export failed", metadata: ["error": "\(error)"])
                        throw error
                    }
                    guard let chunk else { break }
                    try await writer.write(ByteBuffer(bytes: chunk.bytes))
                }
                try await writer.finish(nil)
            })
    }
}
