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
        case "require", "verify-ca":
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            tls = .require(configuration)
        case "verify-full": tls = .require(.makeClientConfiguration())
        default:
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            tls = .prefer(configuration)
        }
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: tls)
        configuration.options.maximumConnections = connectionsMax
        configuration.options.connectTimeout = .seconds(5)
        configuration.options.additionalStartupParameters = [("application_name", "tidings")]
        return configuration
    }

    var label: String { "\(host):\(port)/\(database)" }
}

public struct PostgresLocationError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
