import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// Logs every request with its id, method, path (never the query, which may carry a token),
/// status and duration; counts and times it in the metrics by the route the router matched;
/// and turns the router's bare 404 into the protocol's `not_found` or `method_not_allowed` body.
/// A streamed body (an NDJSON export) is timed until its last byte is written, as Hummingbird's
/// `MetricsMiddleware` does.
struct RequestLoggingMiddleware: RouterMiddleware {
    typealias Context = TidingsRequestContext
    let metrics: ServerMetrics
    let routes: RouteTable

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
            if let methods = routes.methods(path: request.uri.path) {
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
        // The router names the route it matched ("NotFound" when none did).
        let route = context.endpointPath ?? "NotFound"
        let status = response.status.code
        let (metrics, logger, method, path) = (self.metrics, context.logger, request.method, request.uri.path)
        let body = response.body
        response.body = ResponseBody(contentLength: body.contentLength) { writer in
            func finished(_ outcome: String) {
                let elapsed = ContinuousClock.now - started
                metrics.request(route: route, method: method.rawValue, status: status, duration: elapsed)
                logger.info(
                    "request",
                    metadata: [
                        "method": .string(method.rawValue), "path": .string(path), "status": .stringConvertible(status),
                        "ms": .stringConvertible(elapsed.milliseconds), "body": .string(outcome),
                    ])
            }
            do {
                try await body.write(writer)
                finished("written")
            } catch {
                finished("cut short")
                throw error
            }
        }
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
