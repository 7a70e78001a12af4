import Logging
import NIOCore
import PostgresNIO
import Synchronization
import TidingsStore

/// The PostgreSQL servers of a location and the pool of connections to their primary, the one
/// that is not in recovery. Everything the store does goes to the primary. When a call finds
/// its server gone or read-only, the pool is retired and the next call asks every server
/// directly which is the primary now, and opens a new pool to it: a node follows a restart or a
/// failover without restarting, within a connection attempt of the database being back.
final class PostgresServers: Sendable {
    let location: PostgresLocation
    let logger: Logger
    private let connectionsMax: Int
    private let callDeadline: Duration
    private let state = Mutex(State())
    private let connectionIDs = Atomic<Int>(1)
    private let timelineListeners = Mutex<[@Sendable (_ old: String, _ new: String) -> Void]>([])

    private struct State {
        var pool: PostgresPool?
        /// The search for the primary under way, which every call waiting for it shares.
        var search: Task<PostgresPool, any Error>?
        /// The primary's WAL timeline when it was last found: a promoted standby writes on a new
        /// one, a restarted primary on the same.
        var timeline: String?
        /// The last search that found no primary: calls right after it fail the same way
        /// rather than each asking every server again while the database is down.
        var failedSearch: (at: ContinuousClock.Instant, error: StoreError)?
        var closed = false
    }

    /// How long a search that found no primary answers for the calls after it.
    static let failedSearchHold: Duration = .milliseconds(500)

    /// How long asking a server whether it is the primary may take to connect.
    static let probeConnectTimeout: TimeAmount = .seconds(3)

    init(location: PostgresLocation, connectionsMax: Int, callDeadline: Duration, logger: Logger) {
        self.location = location
        self.connectionsMax = connectionsMax
        self.callDeadline = callDeadline
        self.logger = logger
    }

    /// Stops the pool; calls still running fail.
    func shutdown() {
        let (pool, search) = state.withLock { state in
            state.closed = true
            defer { (state.pool, state.search) = (nil, nil) }
            return (state.pool, state.search)
        }
        pool?.retire()
        search?.cancel()
    }

    /// Runs `body` on a connection to the primary. Errors of the connection or the server come
    /// back as `StoreError` (`unavailable` when trying again later may succeed).
    /// A bounded call may hold its connection for `PostgresOptions.callDeadline`; an unbounded
    /// one is for work that takes as long as the log is big, such as a rebuild.
    func withConnection<T: Sendable>(
        bounded: Bool = true,
        _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        let pool = try await primaryPool()
        do {
            return try await pool.withConnection(deadline: bounded ? callDeadline : nil, body)
        } catch {
            if PostgresErrors.lostServer(error) { retire(pool) }
            throw PostgresErrors.storeError(error, server: pool.label)
        }
    }

    /// A connection of its own to the primary, outside the pool (for LISTEN), and the server's
    /// index; tell `connectionLost(server:)` when it drops.
    func connectDirectly() async throws -> (PostgresConnection, server: Int) {
        let pool = try await primaryPool()
        let connection = try await connect(pool.index, connectTimeout: location.servers[pool.index].connectTimeout)
        return (connection, pool.index)
    }

    /// A connection to `server` dropped: its pool is retired too, so that the next call asks
    /// again which server is the primary (the listening connection is often the first to see a
    /// primary go, and a pool would wait out its lease timeout to find it).
    func connectionLost(server: Int) {
        let pool = state.withLock { state -> PostgresPool? in
            guard let pool = state.pool, pool.index == server else { return nil }
            state.pool = nil
            return pool
        }
        pool?.retire()
    }

    /// Calls `listener` when the primary found is on another WAL timeline than the one before:
    /// a standby was promoted (or a backup restored), and the log may have lost commits.
    func onTimelineChange(_ listener: @escaping @Sendable (_ old: String, _ new: String) -> Void) {
        timelineListeners.withLock { $0.append(listener) }
    }

    private func retire(_ pool: PostgresPool) {
        state.withLock { state in
            if state.pool === pool { state.pool = nil }
        }
        pool.retire()
    }

    /// The pool to the primary, found first when not known.
    private func primaryPool() async throws -> PostgresPool {
        let next = try state.withLock { state -> PrimaryPool in
            guard !state.closed else { throw StoreError(.unavailable, "the store is closed") }
            if let pool = state.pool { return .known(pool) }
            if let search = state.search { return .searching(search) }
            if let failed = state.failedSearch, ContinuousClock.now < failed.at + Self.failedSearchHold {
                throw failed.error
            }
            let search = Task { try await self.findPrimary() }
            state.search = search
            return .searching(search)
        }
        switch next {
        case .known(let pool): return pool
        case .searching(let search): return try await search.value
        }
    }

    private struct ProbeAnswer: Sendable {
        var index: Int
        var inRecovery: Bool
        var timeline: String
        var problem: String?
    }

    private enum PrimaryPool {
        case known(PostgresPool)
        case searching(Task<PostgresPool, any Error>)
    }

    /// Asks every server at once whether it is in recovery and opens a pool to the one that is
    /// not. Two that are not (an old primary started again after a failover) are told apart by
    /// their timelines: the promoted one is on the newer.
    private func findPrimary() async throws -> PostgresPool {
        // What each server answered, by its place in the URL list. (A struct: the same answers as
        // a tuple of index and Result trapped with a bad index in release builds of Swift 6.3.1.)
        let answers = await withTaskGroup(of: ProbeAnswer.self) { group in
            for index in location.servers.indices {
                group.addTask {
                    do {
                        let (inRecovery, timeline) = try await self.probe(index)
                        return ProbeAnswer(index: index, inRecovery: inRecovery, timeline: timeline, problem: nil)
                    } catch {
                        return ProbeAnswer(
                            index: index, inRecovery: false, timeline: "", problem: PostgresErrors.describe(error))
                    }
                }
            }
            var answers: [ProbeAnswer] = []
            for await answer in group { answers.append(answer) }
            return answers.sorted { $0.index < $1.index }
        }
        var problems: [String] = []
        var primaries: [(index: Int, timeline: String)] = []
        for answer in answers {
            let label = location.servers[answer.index].label
            if let problem = answer.problem {
                problems.append("\(label): \(problem)")
            } else if answer.inRecovery {
                problems.append("\(label) is in recovery (a standby)")
            } else {
                primaries.append((answer.index, answer.timeline))
            }
        }
        if primaries.count > 1 {
            logger.warning(
                "more than one PostgreSQL server accepts writes; using the one on the newest timeline",
                metadata: [
                    "servers": "\(primaries.map { "\(location.servers[$0.index].label) (timeline \($0.timeline))" })"
                ])
        }
        // Timelines are 8 hexadecimal digits: the newest sorts last.
        guard let primary = primaries.max(by: { $0.timeline < $1.timeline }) else {
            let error = StoreError(
                .unavailable, "no PostgreSQL primary is reachable (\(problems.joined(separator: "; "))); try again")
            state.withLock { state in
                state.search = nil
                state.failedSearch = (.now, error)
            }
            throw error
        }
        let pool = PostgresPool(
            index: primary.index, server: location.servers[primary.index], connectionsMax: connectionsMax,
            logger: logger)
        // A new timeline is told before any call can use the new pool: nothing this node commits
        // on the new primary may reach a stream before the node has checked the history.
        let previous = state.withLock { $0.timeline }
        if let previous, previous != primary.timeline {
            for listener in timelineListeners.withLock({ $0 }) { listener(previous, primary.timeline) }
        }
        let closed = state.withLock { state in
            defer {
                state.search = nil
                state.failedSearch = nil
                state.timeline = primary.timeline
                if !state.closed { state.pool = pool }
            }
            return state.closed
        }
        if closed {
            pool.retire()
            throw StoreError(.unavailable, "the store is closed")
        }
        if location.servers.count > 1 {
            logger.info("PostgreSQL primary found", metadata: ["server": "\(location.servers[primary.index].label)"])
        }
        return pool
    }

    /// Whether `server` is in recovery, and its current timeline when it is not.
    private func probe(_ index: Int) async throws -> (Bool, String) {
        let connection = try await connect(index, connectTimeout: Self.probeConnectTimeout)
        defer { Task { try? await connection.close() } }
        let rows = try await connection.answering(within: .seconds(5)) { [logger] connection in
            try await connection.rows(
                """
                SELECT pg_is_in_recovery(),
                    CASE WHEN pg_is_in_recovery() THEN '' ELSE substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) END
                """, as: (Bool, String).self, logger: logger)
        }
        guard let state = rows.first else { throw StoreError(.internal, "pg_is_in_recovery() gave no row") }
        return state
    }

    private func connect(_ index: Int, connectTimeout: TimeAmount) async throws -> PostgresConnection {
        let configuration = try location.servers[index].connectionConfiguration(connectTimeout: connectTimeout)
        let id = connectionIDs.wrappingAdd(1, ordering: .relaxed).oldValue
        let logger = logger
        // The connect timeout covers TCP; the deadline covers the server's answer to the start too.
        return try await withinDeadline(
            .init(connectTimeout) + .seconds(2), "connecting to \(location.servers[index].label)",
            orphaned: { connection in try? await connection.close() }
        ) {
            try await PostgresConnection.connect(configuration: configuration, id: id, logger: logger)
        }
    }
}

/// What PostgreSQL's errors mean to a client of the store.
enum PostgresErrors {
    static func storeError(_ error: any Error, server: String) -> StoreError {
        if let error = error as? StoreError { return error }
        if let error = error as? PostgresPool.Unavailable { return StoreError(.unavailable, error.message) }
        if let transaction = error as? PostgresTransactionError {
            if let inner = transaction.closureError as? StoreError { return inner }
            let inner = transaction.closureError ?? transaction.beginError ?? transaction.commitError
            if let inner { return storeError(inner, server: server) }
        }
        if let error = error as? PSQLError {
            if let state = error.serverInfo?[.sqlState] {
                // Class 08 (connection), 40 (serialization, deadlock), 53 (resources), 57
                // (shutdown, admin), 25006 (read-only transaction: a standby after failover),
                // 25P03 (the server ended a transaction that waited too long for this node).
                let transient =
                    ["08", "40", "53", "57"].contains(where: state.hasPrefix) || ["25006", "25P03"].contains(state)
                return StoreError(
                    transient ? .unavailable : .internal, "PostgreSQL at \(server) refused: \(describe(error))")
            }
            return StoreError(.unavailable, "PostgreSQL at \(server) cannot be reached: \(describe(error))")
        }
        if error is CancellationError { return StoreError(.unavailable, "the request was cancelled") }
        return StoreError(.unavailable, "PostgreSQL at \(server) failed: \(describe(error))")
    }

    /// Whether `error` says the server is gone for this node, or is no longer the primary: no
    /// connection, a connection closed, a server shutting down or in recovery, or this session
    /// ended by the server (`idle_in_transaction_session_timeout`: the node was cut off).
    static func lostServer(_ error: any Error) -> Bool {
        if error is PostgresPool.Unavailable { return true }
        if let transaction = error as? PostgresTransactionError {
            guard let inner = transaction.closureError ?? transaction.beginError ?? transaction.commitError else {
                return false
            }
            return lostServer(inner)
        }
        guard let error = error as? PSQLError else { return false }
        guard let state = error.serverInfo?[.sqlState] else {
            return [.connectionError, .serverClosedConnection, .uncleanShutdown, .poolClosed, .sslUnsupported]
                .contains(error.code)
        }
        return state.hasPrefix("08") || ["57P01", "57P02", "57P03", "25006", "25P03"].contains(state)
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] {
                let state = error.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
                return message + state
            }
            if let underlying = error.underlying { return "\(error.code): \(underlying)" }
            return "\(error.code)"
        }
        return "\(error)"
    }
}
