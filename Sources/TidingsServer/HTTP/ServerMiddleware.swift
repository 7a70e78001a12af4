import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// Logs every request with its id, method, path (never the query, which may carry a token),
/// status and duration; counts it in the metrics; and turns the router's bare 404 into the
/// protocol's `not_found` or `method_not_allowed` body.
struct RequestLoggingMiddleware: RouterMiddleware {
    typealias Context = TidingsRequestContext
    let metrics: ServerMetrics

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let started = ContinuousClock.now
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as APIError {
            // The server's own faults (a full or read-only disk, a damaged store) are the
            // operator's to fix: each one is logged with its cause, not only counted.
            if error.status == .serviceUnavailable || error.status == .internalServerError {
                context.logger.error(
                    "request failed", metadata: ["code": .string(error.code), "error": .string(error.message)])
            }
            response = try error.response(from: request, context: context)
        } catch let error as any HTTPResponseError where error.status == .notFound {
            // The router found no route: an unknown path, or a known one with another method.
            let routeError =
                RouteTable.allowsAnyMethod(path: request.uri.path)
                ? APIError(code: "method_not_allowed", message: "\(request.method) is not allowed on this path")
                : APIError(code: "not_found", message: "no route for \(request.uri.path)")
            response = try routeError.response(from: request, context: context)
        } catch let error as any HTTPResponseError {
            response = try protocolError(for: error.status).response(from: request, context: context)
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(error)"])
            response = try APIError(code: "internal", message: "internal error; the request id is in the server log")
                .response(from: request, context: context)
        }
        response.headers[HTTPField.Name("X-Request-Id")!] = context.requestID
        let elapsed = ContinuousClock.now - started
        context.logger.info(
            "request",
            metadata: [
                "method": .string(request.method.rawValue), "path": .string(request.uri.path),
                "status": .stringConvertible(response.status.code),
                "ms": .stringConvertible(
                    Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000),
            ])
        metrics.requests(status: response.status.code)
        return response
    }

    private func protocolError(for status: HTTPResponse.Status) -> APIError {
        switch status {
        case .contentTooLarge: APIError(code: "payload_too_large", message: "the request body is larger than 8 MiB")
        case .badRequest: .badRequest("the request is malformed")
        case .notFound: APIError(code: "not_found", message: "not found")
        case .methodNotAllowed: APIError(code: "method_not_allowed", message: "method not allowed")
        case .unsupportedMediaType: APIError(code: "unsupported_media_type", message: "unsupported media type")
        case .serviceUnavailable: APIError(code: "unavailable", message: "the server is unavailable")
        default: APIError(code: "internal", message: "internal error")
        }
    }
}

/// The paths of the HTTP API, for telling an unknown path (404) from a wrong method (405).
enum RouteTable {
    static let patterns: [[String]] = [
        ["v1", "events"], ["v1", "users", "*", "read"], ["v1", "users", "*", "events"], ["v1", "users", "*", "unread"],
        ["v1", "log", "verify"], ["v1", "stats"], ["v1", "admin", "projections", "rebuild"],
        ["v1", "admin", "projections", "verify"], ["healthz"], ["metrics"], ["v1", "openapi.yaml"], ["v1", "stream"],
    ]

    static func allowsAnyMethod(path: String) -> Bool {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        return patterns.contains { pattern in
            pattern.count == segments.count && zip(pattern, segments).allSatisfy { $0 == "*" || $0 == $1 }
        }
    }
}
