import ArgumentParser
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

    func open(progress: ProgressBar? = nil) async throws -> Store {
        var options = StoreOptions()
        options.durability = sync == .full ? .full : .normal
        var report: (@Sendable (RebuildProgress) -> Void)?
        if let progress {
            report = { progress.update($0.processed, of: $0.total, step: $0.phase.description) }
        }
        let store = try await Store.open(directory: data, options: options, rebuildProgress: report)
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
