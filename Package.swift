// swift-tools-version: 6.1
import PackageDescription

/// Settings every Tidings target shares: Swift 6 strict concurrency and the upcoming features
/// that keep imports and existentials explicit.
let strictSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "tidings",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tidings", targets: ["tidings"]),
        .executable(name: "tidings-bench", targets: ["tidings-bench"]),
        .library(name: "TidingsStore", targets: ["TidingsStore"]),
        .library(name: "TidingsSQLite", targets: ["TidingsSQLite"]),
        .library(name: "TidingsPostgres", targets: ["TidingsPostgres"]),
        .library(name: "TidingsServer", targets: ["TidingsServer"]),
        .library(name: "TidingsClient", targets: ["TidingsClient"]),
    ],
    dependencies: [
        // Command-line parsing with generated --help: the `tidings` tool's subcommands.
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // SHA-256 for the hash chain (BoringSSL underneath, SHA-NI when the CPU has it), and
        // HMAC-SHA256 with constant-time comparison for the JWT verifier.
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        // The HTTP server, and its WebSocket upgrade (the server's client library too, for tests
        // and the load generators).
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.1"),
        // Structured logs, metrics with a Prometheus exporter, and graceful shutdown on signals.
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        // HTTP types over NIO's HTTP/1 codec, for the server's own upgrade pipeline.
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        // HTTP client for the server tests and the load generators (never linked into `tidings`).
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        // The PostgreSQL engine's client: async, LISTEN/NOTIFY, no blocking calls on event loops.
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
    ],
    targets: [
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),
        // permessage-deflate on the stream (RFC 7692).
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // No pkgConfig: hiredis.pc carries -D_FILE_OFFSET_BITS=64, which SwiftPM refuses.
        .systemLibrary(name: "CHiredis", providers: [.apt(["libhiredis-dev"])]),
        // epoll(7), for the benchmarks' load generators (part of libc).
        .systemLibrary(name: "CEpoll"),
        // The store as the server and the command line see it (`EventStore`), and what every
        // engine shares: records, blocks, LZ4, the data transform, the hash chain, the
        // projection's rules. No engine, no networking.
        .target(
            name: "TidingsStore",
            dependencies: [
                "CLZ4",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        // The embedded engine: one SQLite file, nothing else to install.
        .target(
            name: "TidingsSQLite",
            dependencies: [
                "TidingsStore",
                "CSQLite",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        // The shared engine: any number of nodes on any number of hosts serve one store kept in
        // PostgreSQL, with the same blocks, chain and projection rules as SQLite.
        .target(
            name: "TidingsPostgres",
            dependencies: [
                "TidingsStore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "TidingsFanout",
            dependencies: [
                "TidingsStore",
                "CHiredis",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "TidingsServer",
            dependencies: [
                "TidingsStore",
                "TidingsFanout",
                "CZlib",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
            ],
            resources: [.copy("Resources")],
            swiftSettings: strictSettings
        ),
        // What the tests and the benchmarks share: the seeded corpus, and launchers of real
        // processes (`tidings serve`, `redis-server`) and loopback sockets. No server code, so the
        // store's tests build without HTTP.
        .target(
            name: "TidingsTestSupport",
            swiftSettings: strictSettings
        ),
        // The Swift client of docs/CLIENTS.md, for apps and services: nothing of the store or the
        // server, only HTTP and WebSocket clients, so that it builds on Apple platforms too.
        .target(
            name: "TidingsClient",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            exclude: ["README.md"],
            swiftSettings: strictSettings
        ),
        // The benchmark workloads beside Redis and the load generators, for `tidings-bench`.
        .target(
            name: "TidingsBench",
            dependencies: [
                "TidingsStore",
                "TidingsSQLite",
                "TidingsPostgres",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                "TidingsFanout",
                "TidingsServer",
                "TidingsTestSupport",
                "CEpoll",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        // The product: the store, live fan-out, the server and the command line, nothing else.
        .executableTarget(
            name: "tidings",
            dependencies: [
                "TidingsStore",
                "TidingsSQLite",
                "TidingsPostgres",
                "TidingsFanout",
                "TidingsServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // The benchmarks as their own program (`tools/bench` runs it; it starts `tidings serve`
        // from the same build folder for the workloads over the network).
        .executableTarget(
            name: "tidings-bench",
            dependencies: [
                "TidingsStore",
                "TidingsSQLite",
                "TidingsBench",
                "TidingsTestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "TidingsClientTests",
            dependencies: [
                "TidingsClient", "TidingsTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "TidingsSQLiteTests",
            dependencies: ["TidingsSQLite", "TidingsStore", "TidingsTestSupport"],
            swiftSettings: strictSettings
        ),
        // What every engine must do alike (the model-based property tests), and the PostgreSQL
        // engine's own tests, against a real PostgreSQL that `tools/test` starts.
        .testTarget(
            name: "TidingsEngineTests",
            dependencies: ["TidingsPostgres", "TidingsSQLite", "TidingsStore", "TidingsTestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "TidingsFanoutTests",
            dependencies: [
                "TidingsFanout", "TidingsStore", "TidingsSQLite", "TidingsTestSupport", "CHiredis",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "TidingsServerTests",
            dependencies: [
                "TidingsServer",
                "TidingsStore",
                "TidingsSQLite",
                "TidingsPostgres",
                "TidingsTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: strictSettings
        ),
    ]
)
