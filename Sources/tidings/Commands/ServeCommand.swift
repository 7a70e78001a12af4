import ArgumentParser
import Foundation
import Logging
import TidingsFanout
import TidingsPostgres
import TidingsSQLite
import TidingsServer
import TidingsStore

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the HTTP API and the WebSocket stream over one store.",
        discussion: """
            Binds 127.0.0.1 unless told otherwise. The JWT secret comes from TIDINGS_JWT_SECRET, else \
            --jwt-secret-file, else DIR/jwt-secret (made on first start, mode 0600; never with --postgres, \
            whose nodes must all be given the same secret); `tidings token` signs tokens with the same \
            secret. SIGTERM or SIGINT shut down gracefully: streams close with 1001, requests in flight \
            finish, the store is checkpointed.

            Several processes may serve one embedded store (SQLite arbitrates the writes); with --redis \
            each process hears of the others' events at once, and without it within half a second (every \
            process watches the log). With --postgres any number of nodes on any number of hosts serve one \
            store: each commit is announced with NOTIFY, so every node hears of it at once, and nodes drain \
            the tidings_outbox table that applications insert into inside their own transactions.

              tidings serve --data ./data --port 8080
              TOKEN=$(tidings token --data ./data --role publisher --sub backend)
              curl -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
                -d '{"type":"notification.created","user_id":"alice",
                     "data":{"notification_id":"n-1","title":"Hi"}}' \\
                http://127.0.0.1:8080/v1/events

              export TIDINGS_JWT_SECRET=$(head -c 32 /dev/urandom | base64)
              tidings serve --postgres postgres://tidings:PASSWORD@db1:5432/tidings,postgres://tidings:PASSWORD@db2:5432/tidings
            """
    )

    @OptionGroup var store: StoreLocation

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on (0 picks a free one).")
    var port = 8080

    @Option(help: ArgumentHelp("File holding the JWT secret (at least 32 bytes).", valueName: "file"))
    var jwtSecretFile: String?

    @Option(
        help: ArgumentHelp(
            "Redis for live delivery between several processes serving the same store, e.g. redis://127.0.0.1:6379/0.",
            valueName: "url"))
    var redis: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    @OptionGroup(title: "Limits") var limits: LimitOptions

    @OptionGroup(title: "Deadlines (HTTP; a connection past one is closed)") var deadlines: DeadlineOptions

    @Option(
        help: ArgumentHelp(
            "SQLite's page cache of the writer's and each of the 4 short-read connections, in MiB (the 2 scan connections keep 8 MiB at most).",
            valueName: "mib"))
    var pageCacheMib = StoreOptions().pageCacheBytes >> 20

    @Option(help: ArgumentHelp("Decompressed log blocks kept for replays, in MiB.", valueName: "mib"))
    var blockCacheMib = StoreOptions().blockCacheBytes >> 20

    @Option(
        help: ArgumentHelp(
            "Bytes of the embedded store's file each read connection maps into memory, in MiB (at most 2047; 0 reads with pread only, for file systems whose read errors must stay errors).",
            valueName: "mib"))
    var readMapMib = StoreOptions().readMapBytes >> 20

    @Option(
        help: ArgumentHelp(
            "Connections this node opens to the PostgreSQL primary at most (one more listens for NOTIFY).",
            valueName: "count"))
    var postgresConnections = PostgresOptions().connectionsMax

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level \(logLevel) is not a level")
        }
        guard (0...65_535).contains(port) else { throw ValidationError("--port must be between 0 and 65535") }
        guard pageCacheMib >= 1, blockCacheMib >= 1 else {
            throw ValidationError("--page-cache-mib and --block-cache-mib must be at least 1")
        }
        guard (0...2_047).contains(readMapMib) else {
            throw ValidationError("--read-map-mib must be between 0 and 2047 (SQLite maps at most 2 GiB)")
        }
        guard (2...1_000).contains(postgresConnections) else {
            throw ValidationError("--postgres-connections must be between 2 and 1000")
        }
        if let redis, RedisURL(redis) == nil {
            throw ValidationError("--redis \(redis) is not a redis://host:port/db URL")
        }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "tidings")
        var configuration = ServerConfiguration()
        configuration.host = host
        configuration.port = port
        configuration.redisURL = redis.flatMap(RedisURL.init)
        limits.apply(to: &configuration)
        deadlines.apply(to: &configuration)
        let engine = try store.engine
        let secret = try JWTSecret.load(generatedIn: engine.secretDirectory, secretFile: jwtSecretFile)
        let opened: any EventStore
        do {
            opened = try await store.open(rebuildProgress: { progress in
                logger.info(
                    "rebuilding the projection",
                    metadata: [
                        "phase": "\(progress.phase.rawValue)", "processed": "\(progress.processed)",
                        "total": "\(progress.total)",
                    ])
            }) { options in
                options.sqlite.pageCacheBytes = pageCacheMib << 20
                options.sqlite.blockCacheBytes = blockCacheMib << 20
                options.sqlite.readMapBytes = readMapMib << 20
                options.postgres.blockCacheBytes = blockCacheMib << 20
                options.postgres.connectionsMax = postgresConnections
                options.isServer = true
                options.logger = Logger(label: "tidings.postgres")
            }
        } catch let error as StoreError {
            throw CLIError("\(error.code): \(error.message)")
        }
        let server = NotificationServer(store: opened, secret: secret, configuration: configuration, logger: logger)
        try await server.run { port in
            logger.info("listening", metadata: ["address": "http://\(host):\(port)", "store": "\(engine.description)"])
            // A parent process (tools/serve, tests) waits for this line on standard output.
            print("tidings listening on http://\(host):\(port)")
            fflush(nil)
        }
    }
}

struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Print a token signed with the server's JWT secret.",
        discussion: """
              tidings token --data ./data --role user --sub alice --ttl 1h
              tidings token --data ./data --role admin --sub ops --ttl 15m
              TIDINGS_JWT_SECRET=... tidings token --postgres postgres://tidings@db1/tidings --role user --sub alice
            Roles: user (its own stream), publisher (appends), auditor (reads everything), admin.
            """
    )

    @Option(
        help: ArgumentHelp(
            "The embedded store's directory, whose jwt-secret signs the token (default ./data).", valueName: "dir"))
    var data: String?

    @Option(
        help: ArgumentHelp(
            "The store is in PostgreSQL (also \(PostgresLocation.environmentVariable)): the secret must come from TIDINGS_JWT_SECRET or --jwt-secret-file.",
            valueName: "url"))
    var postgres: String?

    @Option(help: "user, publisher, auditor or admin.")
    var role: String

    @Option(help: "The subject: for the user role, the user id.")
    var sub: String

    @Option(help: "Lifetime: seconds, or a number with s, m, h or d.")
    var ttl = "1h"

    @Option(help: ArgumentHelp("File holding the JWT secret, as given to serve.", valueName: "file"))
    var jwtSecretFile: String?

    func validate() throws {
        guard Role(rawValue: role) != nil else {
            throw ValidationError("--role must be one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard Self.seconds(ttl) != nil else {
            throw ValidationError("--ttl \(ttl) is not a duration like 3600, 30m or 1h")
        }
        guard !sub.isEmpty else { throw ValidationError("--sub must not be empty") }
    }

    func run() throws {
        let secret = try JWTSecret.load(generatedIn: secretDirectory, secretFile: jwtSecretFile)
        let expiresAt = Int64(Date().timeIntervalSince1970) + Self.seconds(ttl)!
        print(TokenSigner(secret: secret).token(subject: sub, role: Role(rawValue: role)!, expiresAt: expiresAt))
    }

    /// The directory whose generated secret signs, unless the store is in PostgreSQL, which keeps
    /// none: a token must be signed with the secret every node was given.
    private var secretDirectory: String? {
        if postgres != nil { return nil }
        if let data { return data }
        let url = ProcessInfo.processInfo.environment[PostgresLocation.environmentVariable] ?? ""
        return url.isEmpty ? "./data" : nil
    }

    static func seconds(_ text: String) -> Int64? {
        let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
        if let value = Int64(text), value > 0 { return value }
        guard let unit = text.last, let multiplier = units[unit], let value = Int64(text.dropLast()), value > 0 else {
            return nil
        }
        return value * multiplier
    }
}
