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
        .library(name: "TidingsStore", targets: ["TidingsStore"]),
    ],
    dependencies: [
        // Command-line parsing with generated --help: the `tidings` tool's subcommands.
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // SHA-256 for the hash chain (BoringSSL underneath, SHA-NI when the CPU has it).
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),
        // No pkgConfig: hiredis.pc carries -D_FILE_OFFSET_BITS=64, which SwiftPM refuses.
        .systemLibrary(name: "CHiredis", providers: [.apt(["libhiredis-dev"])]),
        .target(
            name: "TidingsStore",
            dependencies: [
                "CSQLite",
                "CLZ4",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "TidingsBench",
            dependencies: ["TidingsStore"],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "tidings",
            dependencies: [
                "TidingsStore",
                "TidingsBench",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "TidingsStoreTests",
            dependencies: ["TidingsStore", "TidingsBench"],
            swiftSettings: strictSettings
        ),
    ]
)
