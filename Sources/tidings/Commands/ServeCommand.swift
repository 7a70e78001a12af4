import ArgumentParser
import Foundation
import Logging
import TidingsFanout
import TidingsSQLite
import TidingsServer
import TidingsStore

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the HTTP API and the WebSocket stream over one store.",
        discussion: """
            Binds 127.0.0.1 unless told otherwise. The JWT secret comes from TIDINGS_JWT_SECRET, else \
            --jwt-secret-file, else DIR/jwt-secret (made on first start, mode 0600); `tidings token` \
            signs tokens with the same secret. SIGTERM or SIGINT shut down gracefully: streams close \
            with 1001, requests in flight finish, the store is checkpointed.

            Several processes may serve one store (SQLite arbitrates the writes); with --redis each \
            process hears of the others' events at once, and without it within half a second (every \
            process watches the log).

              tidings serve --data ./data --port 8080
              TOKEN=$(tidings token --data ./data --role publisher --sub backend)
              curl -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
                -d '{"type":"notification.created","user_id":"alice",
                     "data":{"notification_id":"n-1","title":"Hi"}}' \\
                http://127.0.0.1:8080/v1/events
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

    @Option(
        help: ArgumentHelp(
            "SQLite's page cache of the writer's and each of the 4 short-read connections, in MiB (the 2 scan connections keep 8 MiB at most).",
            valueName: "mib"))
    var pageCacheMib = StoreOptions().pageCacheBytes >> 20

    @Option(help: ArgumentHelp("Decompressed log blocks kept for replays, in MiB.", valueName: "mib"))
    var blockCacheMib = StoreOptions().blockCacheBytes >> 20

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level \(logLevel) is not a level")
        }
        guard (0...65_535).contains(port) else { throw ValidationError("--port must be between 0 and 65535") }
        guard pageCacheMib >= 1, blockCacheMib >= 1 else {
            throw ValidationError("--page-cache-mib and --block-cache-mib must be at least 1")
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
        let secret = try JWTSecret.load(generatedIn: store.data, secretFile: jwtSecretFile)
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
                options.pageCacheBytes = pageCacheMib << 20
                options.blockCacheBytes = blockCacheMib << 20
            }
        } catch let error as StoreError {
            throw CLIError("\(error.code): \(error.message)")
        }
        let server = NotificationServer(store: opened, secret: secret, configuration: configuration, logger: logger)
        try await server.run { port in
            logger.info("listening", metadata: ["address": "http://\(host):\(port)", "data": "\(store.data)"])
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
            Roles: user (its own stream), publisher (appends), auditor (reads everything), admin.
            """
    )

    @Option(help: ArgumentHelp("The store's directory, whose jwt-secret signs the token.", valueName: "dir"))
    var data = "./data"

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
        let secret = try JWTSecret.load(generatedIn: data, secretFile: jwtSecretFile)
        let expiresAt = Int64(Date().timeIntervalSince1970) + Self.seconds(ttl)!
        print(TokenSigner(secret: secret).token(subject: sub, role: Role(rawValue: role)!, expiresAt: expiresAt))
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
