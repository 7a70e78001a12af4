import ArgumentParser
import TidingsSQLite
import TidingsStore

/// `--data DIR` and `--sync`, shared by every command that opens a store.
struct StoreLocation: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The store's directory (created when missing).", valueName: "dir"))
    var data: String = "./data"

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Durability of appends: full (survives machine crashes) or normal (survives process crashes).",
            valueName: "level"))
    var sync: SyncLevel = .full

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
        rebuildProgress: (@Sendable (RebuildProgress) -> Void)?, tune: (inout StoreOptions) -> Void = { _ in }
    ) async throws -> any EventStore {
        var options = StoreOptions()
        options.durability = sync == .full ? .full : .normal
        tune(&options)
        let store = try await SQLiteStore.open(directory: data, options: options, rebuildProgress: rebuildProgress)
        // The store's own I/O that no command waits for (a checkpoint) says when it fails.
        store.onFault { fault in
            if !fault.isRecovery && fault.consecutiveFailures == 1 { Console.error("\(fault)") }
        }
        return store
    }
}

enum SyncLevel: String, ExpressibleByArgument, CaseIterable {
    case full, normal
}
