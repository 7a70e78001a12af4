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
            // The router found no route: an unknown path, or a known one with another method
            // (405 names the methods the path takes, as RFC 9110 requires).
            if let methods = RouteTable.methods(path: request.uri.path) {
                response = try APIError(
                    code: "method_not_allowed", message: "\(request.method) is not allowed on this path"
                )
                .response(from: request, context: context)
                response.headers[.allow] = methods.joined(separator: ", ")
            } else {
                response = try APIError(code: "not_found", message: "no route for \(request.uri.path)")
                    .response(from: request, context: context)
            }
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

/// The paths of the HTTP API and their methods, for telling an unknown path (404) from a wrong
/// method (405, with `Allow`).
enum RouteTable {
    static let routes: [(pattern: [String], methods: [String])] = [
        (["v1", "events"], ["GET", "POST"]), (["v1", "users", "*", "read"], ["POST"]),
        (["v1", "users", "*", "events"], ["GET"]), (["v1", "users", "*", "unread"], ["GET"]),
        (["v1", "log", "verify"], ["GET"]), (["v1", "stats"], ["GET"]),
        (["v1", "admin", "projections", "rebuild"], ["GET", "POST"]),
        (["v1", "admin", "projections", "verify"], ["POST"]), (["healthz"], ["GET"]), (["metrics"], ["GET"]),
        (["v1", "openapi.yaml"], ["GET"]), (["v1", "stream"], ["GET"]), ([], ["GET"]), (["console"], ["GET"]),
        (["web", "*"], ["GET"]),
    ]

    /// The methods `path` takes; nil for a path the API does not have.
    static func methods(path: String) -> [String]? {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        return routes.first { route in
            route.pattern.count == segments.count && zip(route.pattern, segments).allSatisfy { $0 == "*" || $0 == $1 }
        }?.methods
    }
}
