import Logging
import NIOCore
import PostgresNIO
import Synchronization
import TidingsStore

/// The PostgreSQL servers of a location, one connection pool each, and which of them is the
/// primary: the one that is not in recovery. Everything the store does goes to the primary; when
/// a call fails because its server is gone or read-only, the next call looks for the primary
/// again, so a node follows a failover without restarting.
final class PostgresServers: Sendable {
    let location: PostgresLocation
    private let clients: [PostgresClient]
    private let runs: Mutex<[Task<Void, Never>]>
    private let primaryIndex = Mutex<Int?>(nil)
    /// The primary's WAL timeline when it was last found: a promoted standby writes on a new
    /// one, a restarted primary on the same.
    private let timeline = Mutex<String?>(nil)
    private let timelineListeners = Mutex<[@Sendable (_ old: String, _ new: String) -> Void]>([])
    let logger: Logger

    init(location: PostgresLocation, connectionsMax: Int, logger: Logger) {
        self.location = location
        self.logger = logger
        // The pools log every failed connection attempt; the store reports what matters itself.
        var poolLogger = logger
        poolLogger.logLevel = max(logger.logLevel, .error)
        clients = location.servers.map {
            PostgresClient(
                configuration: $0.clientConfiguration(connectionsMax: connectionsMax), backgroundLogger: poolLogger)
        }
        runs = Mutex(clients.map { client in Task { await client.run() } })
    }

    /// Stops every pool; calls still running fail.
    func shutdown() {
        runs.withLock { runs in
            for run in runs { run.cancel() }
            runs.removeAll()
        }
    }

    /// Runs `body` on a connection to the primary. Errors of the connection or the server come
    /// back as `StoreError` (`unavailable` when trying again later may succeed).
    func withConnection<T: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        let index = try await primary()
        do {
            return try await leasing(clients[index], server: location.servers[index].label, body)
        } catch let error as StoreError {
            // No connection within the lease timeout (a server that is gone): look for the
            // primary again at the next call, as after a failed query.
            if error.code == .unavailable { primaryIndex.withLock { $0 = nil } }
            throw error
        } catch {
            let mapped = PostgresErrors.storeError(error, server: location.servers[index].label)
            if mapped.code == .unavailable { primaryIndex.withLock { $0 = nil } }
            throw mapped
        }
    }

    /// How long a call waits for a connection before it answers `unavailable`: a pool whose
    /// server is gone keeps trying to connect and never fails a lease by itself.
    static let leaseTimeout: Duration = .seconds(10)

    /// Runs `body` on a connection of `client`, giving up if none is had within the timeout.
    private func leasing<T: Sendable>(
        _ client: PostgresClient, server: String, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        let leased = LeaseFlag()
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await client.withConnection { connection in
                    leased.value.store(true, ordering: .relaxed)
                    return try await body(connection)
                }
            }
            group.addTask {
                try await Task.sleep(for: Self.leaseTimeout)
                return nil
            }
            while let outcome = try await group.next() {
                if let value = outcome {
                    group.cancelAll()
                    return value
                }
                if !leased.value.load(ordering: .relaxed) {
                    group.cancelAll()
                    throw StoreError(
                        .unavailable,
                        "PostgreSQL at \(server) gave no connection within \(Self.leaseTimeout); try again")
                }
            }
            throw CancellationError()
        }
    }

    /// Calls `listener` when the primary found is on another WAL timeline than the one before:
    /// a standby was promoted (or a backup restored), and the log may have lost commits.
    func onTimelineChange(_ listener: @escaping @Sendable (_ old: String, _ new: String) -> Void) {
        timelineListeners.withLock { $0.append(listener) }
    }

    /// A connection of its own to the primary, outside the pools (for LISTEN).
    func connectDirectly(id: Int) async throws -> PostgresConnection {
        let index = try await primary()
        let server = location.servers[index]
        let plain = server.sslMode == "disable" || server.sslMode == "allow"
        var configuration = PostgresConnection.Configuration(
            host: server.host, port: server.port, username: server.username, password: server.password,
            database: server.database,
            tls: plain ? .disable : .prefer(try NIOSSLContext(configuration: Self.lenientTLS)))
        configuration.options.connectTimeout = TimeAmount.seconds(5)
        return try await PostgresConnection.connect(configuration: configuration, id: id, logger: logger)
    }

    private static let lenientTLS: TLSConfiguration = {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .none
        return configuration
    }()

    /// The index of the server that accepts writes; asks every server when not known.
    private func primary() async throws -> Int {
        if let index = primaryIndex.withLock({ $0 }) { return index }
        var problems: [String] = []
        for (index, client) in clients.enumerated() {
            let label = location.servers[index].label
            do {
                let state = try await leasing(client, server: label) { [logger] connection in
                    try await connection.rows(
                        """
                        SELECT pg_is_in_recovery(),
                            CASE WHEN pg_is_in_recovery() THEN '' ELSE substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) END
                        """, as: (Bool, String).self, logger: logger)
                }
                if let (inRecovery, current) = state.first, !inRecovery {
                    let previous = timeline.withLock { timeline in
                        defer { timeline = current }
                        return timeline
                    }
                    if let previous, previous != current {
                        for listener in timelineListeners.withLock({ $0 }) { listener(previous, current) }
                    }
                    primaryIndex.withLock { $0 = index }
                    if clients.count > 1 { logger.info("PostgreSQL primary found", metadata: ["server": "\(label)"]) }
                    return index
                }
                problems.append("\(label) is in recovery (a standby)")
            } catch {
                problems.append("\(label): \(PostgresErrors.describe(error))")
            }
        }
        throw StoreError(
            .unavailable, "no PostgreSQL primary is reachable (\(problems.joined(separator: "; "))); try again")
    }
}

/// Whether a call got its connection.
private final class LeaseFlag: Sendable {
    let value = Atomic<Bool>(false)
}

/// What PostgreSQL's errors mean to a client of the store.
enum PostgresErrors {
    static func storeError(_ error: any Error, server: String) -> StoreError {
        if let error = error as? StoreError { return error }
        if let transaction = error as? PostgresTransactionError {
            if let inner = transaction.closureError as? StoreError { return inner }
            let inner = transaction.closureError ?? transaction.beginError ?? transaction.commitError
            if let inner { return storeError(inner, server: server) }
        }
        if let error = error as? PSQLError {
            if let state = error.serverInfo?[.sqlState] {
                // Class 08 (connection), 40 (serialization, deadlock), 53 (resources), 57
                // (shutdown, admin), 25006 (read-only transaction: a standby after failover).
                let transient = ["08", "40", "53", "57"].contains(where: state.hasPrefix) || state == "25006"
                return StoreError(
                    transient ? .unavailable : .internal, "PostgreSQL at \(server) refused: \(describe(error))")
            }
            return StoreError(.unavailable, "PostgreSQL at \(server) cannot be reached: \(describe(error))")
        }
        if error is CancellationError { return StoreError(.unavailable, "the request was cancelled") }
        return StoreError(.unavailable, "PostgreSQL at \(server) failed: \(describe(error))")
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
