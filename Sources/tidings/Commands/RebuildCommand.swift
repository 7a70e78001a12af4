import ArgumentParser
import Foundation
import TidingsStore

struct RebuildCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebuild",
        abstract: "Rebuild the unread projection from the log.",
        discussion: """
            Reads the whole log, computes every user's stream index and unread state, writes them beside \
            the live tables and swaps them in atomically. Safe while a server appends to the same store.
              tidings rebuild --data ./data
            """
    )

    @OptionGroup var store: StoreLocation

    func run() async throws {
        let store = try await store.open()
        defer { store.close() }
        let bar = ProgressBar("rebuilding")
        let started = ContinuousClock.now
        try await store.rebuildProjections { progress in
            bar.update(progress.processed, of: progress.total, step: progress.phase.description)
        }
        bar.finish()
        let seconds = (ContinuousClock.now - started).seconds
        let events = try await store.headSeq()
        print(String(format: "rebuilt the projection from %lld events in %.2fs", events, seconds))
    }
}
