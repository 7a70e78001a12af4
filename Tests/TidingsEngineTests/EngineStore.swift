import Foundation
import TidingsPostgres
import TidingsSQLite
import TidingsStore
import TidingsTestSupport

/// A new, empty store of one engine (a temporary folder, or a new database of the test
/// cluster), closed and removed when the test ends.
final class EngineStore: @unchecked Sendable {
    // @unchecked: `store` is replaced only by `reopen`, which a test calls from its own task.
    let engine: Engine
    let directory: String?
    let url: String?
    let blockTargetBytes: Int
    private(set) var store: any EventStore

    private init(engine: Engine, directory: String?, url: String?, blockTargetBytes: Int, store: any EventStore) {
        self.engine = engine
        self.directory = directory
        self.url = url
        self.blockTargetBytes = blockTargetBytes
        self.store = store
    }

    static func make(_ engine: Engine, blockTargetBytes: Int = 4_096) async throws -> EngineStore {
        switch engine {
        case .sqlite:
            let directory = NSTemporaryDirectory() + "tidings-test-" + UUID().uuidString
            return EngineStore(
                engine: engine, directory: directory, url: nil, blockTargetBytes: blockTargetBytes,
                store: try await openSQLite(directory, blockTargetBytes: blockTargetBytes))
        case .postgres:
            let url = try PostgresCluster.shared().makeDatabase()
            return EngineStore(
                engine: engine, directory: nil, url: url, blockTargetBytes: blockTargetBytes,
                store: try await openPostgres(url, blockTargetBytes: blockTargetBytes))
        }
    }

    static func openSQLite(_ directory: String, blockTargetBytes: Int) async throws -> SQLiteStore {
        var options = StoreOptions()
        options.blockTargetBytes = blockTargetBytes
        options.checkpointEvents = 7
        options.durability = .normal
        return try await SQLiteStore.open(directory: directory, options: options)
    }

    static func openPostgres(_ url: String, blockTargetBytes: Int) async throws -> PostgresStore {
        var options = PostgresOptions()
        options.blockTargetBytes = blockTargetBytes
        options.connectionsMax = 4
        return try await PostgresStore.open(try PostgresLocation(url), options: options)
    }

    /// Closes the store and opens it again, as a restart would.
    func reopen() async throws {
        store.close()
        switch engine {
        case .sqlite: store = try await Self.openSQLite(directory!, blockTargetBytes: blockTargetBytes)
        case .postgres: store = try await Self.openPostgres(url!, blockTargetBytes: blockTargetBytes)
        }
    }

    deinit {
        store.close()
        if let directory { try? FileManager.default.removeItem(atPath: directory) }
    }
}

func created(_ user: String, _ notification: String, id: String? = nil, title: String = "Hello") -> NewEvent {
    NewEvent(
        type: .created, userID: user, id: id,
        data: #"{"notification_id":"\#(notification)","title":"\#(title)"}"#)
}

func read(_ user: String, _ notification: String, id: String? = nil) -> NewEvent {
    NewEvent(type: .read, userID: user, id: id, data: #"{"notification_id":"\#(notification)"}"#)
}

func readAll(_ user: String, upTo: Int64? = nil, id: String? = nil) -> NewEvent {
    NewEvent(type: .readAll, userID: user, id: id, data: upTo.map { #"{"up_to_seq":\#($0)}"# } ?? "{}")
}

extension StoredEvent {
    var dataText: String { String(decoding: data, as: UTF8.self) }
}
