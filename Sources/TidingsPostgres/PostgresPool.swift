import Logging
import PostgresNIO
import Synchronization
import TidingsStore

/// A connection pool to one server, as a node uses it: every call gets its connection within a
/// timeout and its answer within a deadline, or fails; and a pool can be retired, which stops
/// it once its last call has ended.
///
/// A node replaces its pool rather than nursing it back: postgres-nio's pool retries a server
/// that went away with a back-off that grows towards a minute, so after a database restart it
/// could take that long to try again, and it never fails a waiting call by itself.
final class PostgresPool: Sendable {
    let index: Int
    let label: String
    private let client: PostgresClient
    private let run: Task<Void, Never>
    private let state = Mutex(State())

    private struct State {
        var calls = 0
        var retired = false
        var stopped = false
    }

    /// A call that got no connection or no answer: the server is gone, or the pool was retired.
    struct Unavailable: Error {
        let message: String
    }

    /// How long a call waits for a connection before it answers `unavailable`.
    static let leaseTimeout: Duration = .seconds(10)

    init(index: Int, server: PostgresLocation.Server, connectionsMax: Int, logger: Logger) {
        self.index = index
        label = server.label
        // The pool logs every failed connection attempt; the store reports what matters itself.
        var poolLogger = logger
        poolLogger.logLevel = max(logger.logLevel, .error)
        let client = PostgresClient(
            configuration: server.clientConfiguration(connectionsMax: connectionsMax), backgroundLogger: poolLogger)
        self.client = client
        run = Task { await client.run() }
    }

    /// Runs `body` on a connection of this pool. No connection within the lease timeout, or no
    /// end of `body` within `deadline` of getting one, fails the call with `Unavailable` at that
    /// moment (and closes the connection); `nil` lets `body` take as long as it needs.
    ///
    /// The work runs in a task of its own that the call does not wait for once it has given up:
    /// a driver call on a connection whose server vanished may take its time to notice even its
    /// own cancellation, and the node's caller must not.
    func withConnection<T: Sendable>(
        deadline: Duration?, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        let admitted = state.withLock { state -> Bool in
            guard !state.retired else { return false }
            state.calls += 1
            return true
        }
        guard admitted else { throw Unavailable(message: "the connections to \(label) were closed; try again") }
        defer { callEnded() }
        let lease = Lease()
        let outcome = Outcome<T>()
        let client = client
        let label = label
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                outcome.start(continuation)
                let work = Task {
                    do {
                        let value = try await client.withConnection { connection in
                            try lease.begin(connection)
                            defer { lease.end() }
                            return try await body(connection)
                        }
                        outcome.finish(.success(value))
                    } catch {
                        outcome.finish(.failure(error))
                    }
                }
                let watchdog = Task {
                    try await Task.sleep(for: Self.leaseTimeout)
                    guard let leasedAt = lease.leasedOrAbandon() else {
                        outcome.finish(
                            .failure(
                                Unavailable(
                                    message:
                                        "PostgreSQL at \(label) gave no connection within \(Self.leaseTimeout); try again"
                                )))
                        return
                    }
                    guard let deadline else { return }
                    try await Task.sleep(until: leasedAt + deadline)
                    let connection = lease.connection
                    let gaveUp = outcome.finish(
                        .failure(
                            Unavailable(message: "PostgreSQL at \(label) did not answer within \(deadline); try again"))
                    )
                    if gaveUp, let connection { try? await connection.close() }
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

    /// Takes no more calls, and stops the pool once the calls it has are over (at once when none).
    func retire() {
        let stop = state.withLock { state -> Bool in
            state.retired = true
            return takeStop(&state)
        }
        if stop { run.cancel() }
    }

    private func callEnded() {
        let stop = state.withLock { state -> Bool in
            state.calls -= 1
            return takeStop(&state)
        }
        if stop { run.cancel() }
    }

    private func takeStop(_ state: inout State) -> Bool {
        guard state.retired, state.calls == 0, !state.stopped else { return false }
        state.stopped = true
        return true
    }
}

/// One call's connection: when it was had, and whether its deadline closed it.
private final class Lease: Sendable {
    private struct State {
        var leasedAt: ContinuousClock.Instant?
        var connection: PostgresConnection?
        var abandoned = false
    }

    private let state = Mutex(State())

    /// The call got its connection; throws when it had given up waiting for one.
    func begin(_ connection: PostgresConnection) throws {
        try state.withLock { state in
            guard !state.abandoned else { throw CancellationError() }
            state.leasedAt = .now
            state.connection = connection
        }
    }

    func end() {
        state.withLock { $0.connection = nil }
    }

    /// When the connection was had; or, when it was not, gives the call up and returns nil.
    func leasedOrAbandon() -> ContinuousClock.Instant? {
        state.withLock { state in
            if state.leasedAt == nil { state.abandoned = true }
            return state.leasedAt
        }
    }

    /// The connection while `body` uses it.
    var connection: PostgresConnection? { state.withLock { $0.connection } }
}
