import Foundation
package import PostgresNIO

/// Where a PostgreSQL store lives: one or more `postgres://USER:PASSWORD@HOST:PORT/DB` URLs,
/// separated by commas. With several, they name a primary and its standbys: a node writes only
/// to the one that is not in recovery, and looks again when it fails over.
public struct PostgresLocation: Sendable, Equatable, CustomStringConvertible {
    public struct Server: Sendable, Equatable {
        public var host: String
        public var port: Int
        public var username: String
        public var password: String?
        public var database: String
        /// `disable`, `prefer` or `require`, as libpq's `sslmode` (`verify-full` is `require`
        /// with the system's trust roots and the host name checked).
        public var sslMode: String
    }

    public var servers: [Server]

    /// The environment variable every command reads when `--postgres` is not given.
    public static let environmentVariable = "TIDINGS_POSTGRES_URL"

    /// Parses one URL or several separated by commas.
    public init(_ text: String) throws {
        let parts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !parts.isEmpty else { throw PostgresLocationError("no PostgreSQL URL given") }
        servers = try parts.map(Self.server)
    }

    private static func server(_ text: String) throws -> Server {
        guard let url = URLComponents(string: text), let scheme = url.scheme,
            scheme == "postgres" || scheme == "postgresql"
        else {
            throw PostgresLocationError(
                "\(redacted(text)) is not a PostgreSQL URL; write postgres://USER:PASSWORD@HOST:PORT/DATABASE")
        }
        guard let host = url.host, !host.isEmpty else {
            throw PostgresLocationError("\(redacted(text)) names no host")
        }
        guard let user = url.user, !user.isEmpty else {
            throw PostgresLocationError("\(redacted(text)) names no user: postgres://USER@HOST/DATABASE")
        }
        let database = url.path.hasPrefix("/") ? String(url.path.dropFirst()) : url.path
        guard !database.isEmpty else {
            throw PostgresLocationError("\(redacted(text)) names no database: postgres://USER@HOST/DATABASE")
        }
        var sslMode = "prefer"
        for item in url.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                let mode = item.value ?? ""
                guard ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"].contains(mode) else {
                    throw PostgresLocationError("sslmode \(mode) is not one of disable, prefer, require, verify-full")
                }
                sslMode = mode
            default:
                throw PostgresLocationError(
                    "\(redacted(text)) has the unknown parameter \(item.name); only sslmode is read")
            }
        }
        return Server(
            host: host, port: url.port ?? 5432, username: user.removingPercentEncoding ?? user,
            password: url.password.map { $0.removingPercentEncoding ?? $0 }, database: database, sslMode: sslMode)
    }

    /// The URL without its password, for logs and errors.
    static func redacted(_ text: String) -> String {
        guard var url = URLComponents(string: text), url.password != nil else { return text }
        url.password = "***"
        return url.string ?? "the URL"
    }

    public var description: String {
        servers.map { "postgres://\($0.username)@\($0.host):\($0.port)/\($0.database)" }.joined(separator: ",")
    }
}

extension PostgresLocation.Server {
    /// The client configuration of this server.
    package func clientConfiguration(connectionsMax: Int) -> PostgresClient.Configuration {
        let tls: PostgresClient.Configuration.TLS
        switch sslMode {
        case "disable", "allow": tls = .disable
        case "require", "verify-ca": tls = .require(Self.unverifiedTLS)
        case "verify-full": tls = .require(.makeClientConfiguration())
        default: tls = .prefer(Self.unverifiedTLS)
        }
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: tls)
        configuration.options.maximumConnections = connectionsMax
        configuration.options.connectTimeout = .init(connectTimeout)
        configuration.options.additionalStartupParameters = Self.sessionParameters
        return configuration
    }

    /// Settings of every session a node opens, sent at connection start.
    ///
    /// A node cut off the network in the middle of a group transaction leaves its session idle
    /// in transaction on the server, holding the head row that every node's group commit locks:
    /// PostgreSQL would wait for that client until TCP gives up (hours), and every node's appends
    /// with it. `idle_in_transaction_session_timeout` ends such a session, and releases the head,
    /// after `idleInTransactionSeconds`; a group's statements follow each other within
    /// milliseconds, so no live node comes near it. The keepalives make the server notice a
    /// silent client of an idle session within about 25 s and free its connection slot.
    static let sessionParameters: [(String, String)] = [
        ("application_name", "tidings"),
        ("idle_in_transaction_session_timeout", "\(idleInTransactionSeconds * 1000)"),
        ("tcp_keepalives_idle", "10"), ("tcp_keepalives_interval", "5"), ("tcp_keepalives_count", "3"),
    ]

    /// How long the server keeps a session that sits in a transaction without a statement.
    static let idleInTransactionSeconds = 5

    /// The configuration of a connection of its own to this server, outside any pool, with the
    /// settings of the pool's sessions.
    func connectionConfiguration(connectTimeout: TimeAmount) throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        switch sslMode {
        case "disable", "allow": tls = .disable
        case "require", "verify-ca": tls = .require(try NIOSSLContext(configuration: Self.unverifiedTLS))
        case "verify-full": tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
        default: tls = .prefer(try NIOSSLContext(configuration: Self.unverifiedTLS))
        }
        var configuration = PostgresConnection.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: tls)
        configuration.options.connectTimeout = connectTimeout
        configuration.options.additionalStartupParameters = Self.sessionParameters
        return configuration
    }

    /// How long a node waits for a connection to be made.
    var connectTimeout: TimeAmount { .seconds(5) }

    private static let unverifiedTLS: TLSConfiguration = {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .none
        return configuration
    }()

    var label: String { "\(host):\(port)/\(database)" }
}

public struct PostgresLocationError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
