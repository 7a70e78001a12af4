import PostgresNIO
import Synchronization

/// How a call ended, settled once: by its work, its watchdog or its caller's cancellation,
/// whichever comes first. The others find it settled and do nothing.
final class Outcome<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var result: Result<T, any Error>?
        var onFinish: (@Sendable () -> Void)?
        var finished = false
    }

    private let state = Mutex(State())

    func start(_ continuation: CheckedContinuation<T, any Error>) {
        let early = state.withLock { state -> Result<T, any Error>? in
            if state.finished { return state.result }
            state.continuation = continuation
            return nil
        }
        if let early { continuation.resume(with: early) }
    }

    /// Runs `action` when the call is settled (at once when it is already).
    func onFinish(_ action: @escaping @Sendable () -> Void) {
        let now = state.withLock { state -> Bool in
            if state.finished { return true }
            state.onFinish = action
            return false
        }
        if now { action() }
    }

    /// Settles the call with `result` unless it is settled already; returns whether it was this.
    @discardableResult
    func finish(_ result: Result<T, any Error>) -> Bool {
        let (first, continuation, action) = state.withLock {
            state -> (Bool, CheckedContinuation<T, any Error>?, (@Sendable () -> Void)?) in
            guard !state.finished else { return (false, nil, nil) }
            state.finished = true
            state.result = result
            defer { (state.continuation, state.onFinish) = (nil, nil) }
            return (true, state.continuation, state.onFinish)
        }
        continuation?.resume(with: result)
        action?()
        return first
    }
}

/// Runs `body`, failing with `PostgresPool.Unavailable` (saying `what` did not end within
/// `limit`) at once when it has not ended by then, without waiting for it: `onExpiry` runs then
/// (to close a connection, say), and `orphaned` gets what `body` makes if it ends after all.
func withinDeadline<T: Sendable>(
    _ limit: Duration, _ what: String, onExpiry: @escaping @Sendable () async -> Void = {},
    orphaned: @escaping @Sendable (T) async -> Void = { _ in }, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let outcome = Outcome<T>()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { continuation in
            outcome.start(continuation)
            let work = Task {
                do {
                    let value = try await body()
                    if !outcome.finish(.success(value)) { await orphaned(value) }
                } catch {
                    outcome.finish(.failure(error))
                }
            }
            let watchdog = Task {
                try await Task.sleep(for: limit)
                let message = "\(what) did not end within \(limit); try again"
                if outcome.finish(.failure(PostgresPool.Unavailable(message: message))) { await onExpiry() }
            }
            outcome.onFinish {
                work.cancel()
                watchdog.cancel()
            }
        }
    } onCancel: {
        outcome.finish(.failure(CancellationError()))
    }
}

extension PostgresConnection {
    /// Runs `body` on this connection within `limit`, closing the connection when it is late (a
    /// server that stopped answering).
    func answering<T: Sendable>(
        within limit: Duration, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await withinDeadline(limit, "a query to PostgreSQL", onExpiry: { try? await self.close() }) {
            try await body(self)
        }
    }
}
