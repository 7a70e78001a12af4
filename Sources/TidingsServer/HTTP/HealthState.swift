import Hummingbird
import Synchronization

/// `/healthz`: 200 while serving, 503 once shutdown has begun.
final class HealthState: Sendable {
    private let shuttingDown = Atomic<Bool>(false)

    func beginShutdown() { shuttingDown.store(true, ordering: .relaxed) }

    var isServing: Bool { !shuttingDown.load(ordering: .relaxed) }

    func response() -> Response {
        isServing
            ? APIRoutes.json(Array(#"{"status":"ok"}"#.utf8))
            : APIRoutes.json(Array(#"{"status":"shutting_down"}"#.utf8), status: .serviceUnavailable)
    }
}
