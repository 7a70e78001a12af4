import ArgumentParser
import Foundation
import Logging
import TidingsPostgres
import TidingsSQLite
import TidingsStore

/// `--data DIR` or `--postgres URL`, and `--sync`, shared by every command that opens a store.
struct StoreLocation: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The embedded store's directory, created when missing (default ./data; its database is tidings.sqlite).",
            valueName: "dir"))
    var data: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            """
            A store in PostgreSQL instead: postgres://USER:PASSWORD@HOST:PORT/DATABASE, or several such URLs \
            separated by commas (a primary and its standbys; writes go to the one not in recovery). Also read \
            from \(PostgresLocation.environmentVariable).
            """,
            valueName: "url"))
    var postgres: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Durability of appends on the embedded store: full (survives machine crashes) or normal (survives process crashes). PostgreSQL follows its synchronous_commit.",
            valueName: "level"))
    var sync: SyncLevel = .full

    /// Which engine and where, after the command line and the environment have spoken.
    var engine: StoreEngine {
        get throws {
            if let postgres {
                guard data == nil else {
                    throw ValidationError("--data and --postgres name two stores; give one of them")
                }
                return .postgres(try Self.location(postgres, source: "--postgres"))
            }
            if let data { return .sqlite(directory: data) }
            if let url = ProcessInfo.processInfo.environment[PostgresLocation.environmentVariable], !url.isEmpty {
                return .postgres(try Self.location(url, source: PostgresLocation.environmentVariable))
            }
            return .sqlite(directory: "./data")
        }
    }

    func validate() throws {
        _ = try engine
    }

    private static func location(_ text: String, source: String) throws -> PostgresLocation {
        do {
            return try PostgresLocation(text)
        } catch let error as PostgresLocationError {
            throw ValidationError("\(source): \(error.description)")
        }
    }

    /// Opens the store, showing a projection rebuild (when its version changed) on `progress`.
    func open(progress: ProgressBar? = nil) async throws -> any EventStore {
        var report: (@Sendable (RebuildProgress) -> Void)?
        if let progress {
            report = { progress.update($0.processed, of: $0.total, step: $0.phase.description) }
        }
        return try await open(rebuildProgress: report)
    }

    /// Opens the store with the engine's options adjusted by `tune`.
    func open(
        rebuildProgress: (@Sendable (RebuildProgress) -> Void)?, tune: (inout EngineOptions) -> Void = { _ in }
    ) async throws -> any EventStore {
        var options = EngineOptions()
        options.sqlite.durability = sync == .full ? .full : .normal
        tune(&options)
        let store: any EventStore
        switch try engine {
        case .sqlite(let directory):
            store = try await SQLiteStore.open(
                directory: directory, options: options.sqlite, rebuildProgress: rebuildProgress)
        case .postgres(let location):
            // A command that is not a server reads its store and leaves the outbox to the nodes.
            if !options.isServer { options.postgres.drainsOutbox = false }
            store = try await PostgresStore.open(location, options: options.postgres, logger: options.logger)
        }
        // The store's own I/O that no command waits for (a checkpoint, a lost notification
        // connection) says when it fails.
        store.onFault { fault in
            if !fault.isRecovery && fault.consecutiveFailures == 1 { Console.error("\(fault)") }
        }
        return store
    }
}

/// The engine a command line names.
enum StoreEngine {
    case sqlite(directory: String)
    case postgres(PostgresLocation)

    /// Where the store is, for log lines and messages: a PostgreSQL URL without its password.
    var description: String {
        switch self {
        case .sqlite(let directory): directory
        case .postgres(let location): location.description
        }
    }

    /// The directory that keeps a generated JWT secret; none for PostgreSQL, whose nodes must
    /// share one secret given to each.
    var secretDirectory: String? {
        switch self {
        case .sqlite(let directory): directory
        case .postgres: nil
        }
    }
}

/// Each engine's options, as a command adjusts them before opening.
struct EngineOptions {
    var sqlite = StoreOptions()
    var postgres = PostgresOptions()
    /// A server drains the PostgreSQL outbox; one-shot commands do not.
    var isServer = false
    var logger = Logger(label: "tidings.postgres")
}

enum SyncLevel: String, ExpressibleByArgument, CaseIterable {
    case full, normal
}
