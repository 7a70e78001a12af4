import HTTPTypes
import Hummingbird
import Synchronization

/// The routes as they are registered on the router, path pattern and methods: the one list
/// the server has, so telling an unknown path (404) from a wrong method (405 with `Allow`)
/// can never disagree with what the router serves. Every route is added by `RouteRegistrar`.
final class RouteTable: Sendable {
    private struct Route {
        /// Path segments; `*` for a parameter (`:user_id`).
        let pattern: [Substring]
        var methods: [String]
    }

    private let routes = Mutex<[Route]>([])

    fileprivate func add(_ method: HTTPRequest.Method, _ path: String) {
        let pattern = Self.segments(path).map { $0.hasPrefix(":") ? "*" : $0 }
        routes.withLock { routes in
            if let index = routes.firstIndex(where: { $0.pattern == pattern }) {
                routes[index].methods.append(method.rawValue)
            } else {
                routes.append(Route(pattern: pattern, methods: [method.rawValue]))
            }
        }
    }

    /// The methods `path` takes; nil for a path the server does not have.
    func methods(path: String) -> [String]? {
        let segments = Self.segments(path)
        return routes.withLock { routes in
            routes.first { route in
                route.pattern.count == segments.count
                    && zip(route.pattern, segments).allSatisfy { $0 == "*" || $0 == $1 }
            }?.methods
        }
    }

    private static func segments(_ path: String) -> [Substring] {
        path.split(separator: "/", omittingEmptySubsequences: true)
    }
}

/// Adds routes to the router and to its `RouteTable` together.
struct RouteRegistrar {
    let router: Router<TidingsRequestContext>
    let table: RouteTable

    func on(
        _ method: HTTPRequest.Method, _ path: String,
        use handler: @escaping @Sendable (Request, TidingsRequestContext) async throws -> Response
    ) {
        table.add(method, path)
        router.on(RouterPath(path), method: method, use: handler)
    }
}
