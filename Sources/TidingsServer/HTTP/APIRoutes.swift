import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import TidingsFanout
import TidingsStore

/// The HTTP API of PROTOCOL.md. Each handler checks in the protocol's order: token (401), role
/// (403), content type (415), sizes (413), shapes and fields (400), then the store decides
/// (409 and the rest).
struct APIRoutes: Sendable {
    let store: any EventStore
    let verifier: TokenVerifier
    let metrics: ServerMetrics
    let configuration: ServerConfiguration
    let sessions: SessionRegistry
    let health: HealthState
    let bridge: RedisBridge?

    func register(on routes: RouteRegistrar) {
        routes.on(.post, "/v1/events") { request, context in try await appendEvents(request, context) }
        routes.on(.get, "/v1/events") { request, context in try await allEvents(request, context) }
        routes.on(.post, "/v1/users/:user_id/read") { request, context in try await markRead(request, context) }
        routes.on(.post, "/v1/users/:user_id/mark") { request, context in try await markState(request, context) }
        routes.on(.get, "/v1/users/:user_id/events") { request, context in try await userEvents(request, context) }
        routes.on(.get, "/v1/users/:user_id/unread") { request, context in try await unread(request, context) }
        routes.on(.get, "/v1/users/:user_id/notifications") { request, context in
            try await notifications(request, context)
        }
        routes.on(.get, "/v1/log/verify") { request, context in try await verifyLog(request, context) }
        routes.on(.get, "/v1/stats") { request, context in try await stats(request, context) }
        routes.on(.post, "/v1/admin/projections/rebuild") { request, context in
            try await startRebuild(request, context)
        }
        routes.on(.get, "/v1/admin/projections/rebuild") { request, context in
            try await rebuildState(request, context)
        }
        routes.on(.post, "/v1/admin/projections/verify") { request, context in
            try await verifyProjections(request, context)
        }
        routes.on(.get, "/v1/stream") { _, _ -> Response in
            throw APIError.badRequest("GET /v1/stream takes a WebSocket upgrade")
        }
        routes.on(.get, "/healthz") { _, _ in health.response() }
        routes.on(.get, "/metrics") { _, _ in metricsResponse() }
        routes.on(.get, "/v1/openapi.yaml") { _, _ in try OpenAPIDocument.response("openapi.yaml") }
        routes.on(.get, "/v1/:document") { _, context in
            let name = context.parameters.get("document") ?? ""
            guard name.hasSuffix(".json") else {
                throw APIError(code: "not_found", message: "no route for /v1/\(name)")
            }
            return try OpenAPIDocument.response(name)
        }
        WebPages.register(on: routes)
    }

    // MARK: Authentication and bodies

    func principal(_ request: Request, _ context: TidingsRequestContext) throws -> Principal {
        guard let header = request.headers[.authorization], let token = BearerCredential.token(from: header) else {
            throw APIError.unauthorized
        }
        do {
            return try verifier.verify(token)
        } catch {
            context.logger.debug("token refused", metadata: ["reason": .string(error.reason)])
            throw APIError.unauthorized
        }
    }

    func require(_ allowed: Bool) throws {
        if !allowed { throw APIError.forbidden }
    }

    /// The request body, after the content-type (415) and size (413) checks. Nil when empty.
    func body(_ request: Request) async throws -> [UInt8]? {
        let declaredLength = request.headers[.contentLength].flatMap { Int($0) }
        let hasBody = (declaredLength ?? 0) > 0 || request.headers[.transferEncoding] != nil
        if hasBody {
            guard let type = request.headers[.contentType], HeaderBytes.isJSON(type) else {
                throw APIError(
                    code: "unsupported_media_type", message: "the body must be Content-Type: application/json")
            }
        }
        if let declaredLength, declaredLength > configuration.requestBodyBytesMax { throw tooLarge }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: configuration.requestBodyBytesMax)
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            throw tooLarge
        }
        return buffer.readableBytes == 0 ? nil : Array(buffer.readableBytesView)
    }

    private var tooLarge: APIError {
        APIError(
            code: "payload_too_large",
            message: "the request body is larger than \(configuration.requestBodyBytesMax) bytes")
    }

    /// Bodies of the admin POSTs: nothing, or `{}`.
    func emptyBody(_ request: Request) async throws {
        guard let body = try await body(request) else { return }
        guard case .object(let members) = try parse(body), members.isEmpty else {
            throw APIError.badRequest("the body must be empty or {}")
        }
    }

    func parse(_ body: [UInt8]) throws -> JSONValue {
        do {
            return try JSONValue.parse(body)
        } catch {
            throw APIError.badRequest("body is not valid JSON: \(error)")
        }
    }

    func userID(_ context: TidingsRequestContext) throws -> String {
        guard let raw = context.parameters.get("user_id"), let decoded = raw.removingPercentEncoding else {
            throw APIError.badRequest("user_id is not valid percent-encoding")
        }
        return decoded
    }

    func limit(_ request: Request) throws -> Int {
        guard let text = request.uri.queryParameters.get("limit") else { return Limits.pageLimitDefault }
        guard let value = Int(text), (1...Limits.pageLimitMax).contains(value) else {
            throw APIError.badRequest("limit must be an integer between 1 and \(Limits.pageLimitMax)")
        }
        return value
    }

    func storeCall<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as StoreError {
            throw APIError(error)
        }
    }

    // MARK: Responses

    static func json(_ bytes: [UInt8], status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    func envelope(_ event: StoredEvent, userStream: Bool) -> [UInt8] {
        EnvelopeJSON.encode(event, cursor: store.cursor(of: event, userStream: userStream))
    }

    func page(_ page: EventPage, userStream: Bool) -> Response {
        var writer = JSONWriter(capacity: 512 * max(page.events.count, 1))
        writer.arrayField("events", page.events.map { envelope($0, userStream: userStream) })
        writer.field("next_cursor", page.nextCursor)
        writer.field("has_more", page.hasMore)
        return Self.json(writer.finish())
    }

    func metricsResponse() -> Response {
        let job = store.rebuildJob
        metrics.observe(connections: sessions.count, rebuildProcessed: job?.processed, rebuildTotal: job?.total)
        if let bridge { metrics.observe(redis: bridge.status) }
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: metrics.render(readLanes: store.readLaneStatistics))))
    }
}
