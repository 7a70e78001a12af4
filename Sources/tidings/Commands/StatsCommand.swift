import ArgumentParser
import Foundation
import TidingsStore

struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Show the store's size: events, users, blocks, raw and stored bytes, compression ratio.",
        discussion: """
              tidings stats --data ./data
              tidings stats --data ./data --json
              tidings stats --postgres postgres://tidings@db1:5432/tidings
            """
    )

    @OptionGroup var store: StoreLocation

    @Flag(help: "Print the figures as JSON.")
    var json = false

    func run() async throws {
        let engine = try self.store.engine
        let store = try await self.store.open()
        defer { store.close() }
        let stats = try await store.stats()
        if json {
            let object: [String: Any] = [
                "events": stats.events, "users": stats.users, "blocks": stats.blocks, "raw_bytes": stats.rawBytes,
                "stored_bytes": stats.storedBytes, "compression_ratio": stats.compressionRatio,
                "file_bytes": stats.fileBytes,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("events             \(stats.events)")
        print("users              \(stats.users)")
        print("blocks             \(stats.blocks)")
        print("raw bytes          \(stats.rawBytes)  (events as appended, compact JSON)")
        print("stored bytes       \(stats.storedBytes)  (compressed blocks and tail)")
        print(String(format: "compression ratio  %.2f", stats.compressionRatio))
        switch engine {
        case .sqlite: print("database file      \(stats.fileBytes) bytes (with its write-ahead log)")
        case .postgres: print("database tables    \(stats.fileBytes) bytes (every tidings_ table with its indexes)")
        }
    }
}
