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
        options.callDeadline = testPostgresCallDeadline
        return try await PostgresStore.open(try PostgresLocation(url), options: options)
    }

    /// Closes the store and opens it again, as a restart would.
    func reopen() async throws {
        store.close()
        store = try await Self.open(engine, directory: directory, url: url, blockTargetBytes: blockTargetBytes)
    }

    private static func open(
        _ engine: Engine, directory: String?, url: String?, blockTargetBytes: Int
    ) async throws -> any EventStore {
        switch engine {
        case .sqlite: try await openSQLite(directory!, blockTargetBytes: blockTargetBytes)
        case .postgres: try await openPostgres(url!, blockTargetBytes: blockTargetBytes)
        }
    }

    /// A copy of the store as it is now, under the same epoch, opened beside it: what a standby
    /// that stops receiving commits at this moment holds. Each goes on with its own history.
    func forkedCopy() async throws -> EngineStore {
        store.close()
        let copy: EngineStore
        switch engine {
        case .sqlite:
            let target = NSTemporaryDirectory() + "tidings-test-" + UUID().uuidString
            try FileManager.default.copyItem(atPath: directory!, toPath: target)
            copy = EngineStore(
                engine: engine, directory: target, url: nil, blockTargetBytes: blockTargetBytes,
                store: try await Self.openSQLite(target, blockTargetBytes: blockTargetBytes))
        case .postgres:
            let cluster = try PostgresCluster.shared()
            let name =
                "tidings_test_fork_" + UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: "")
            let source = URLComponents(string: url!)!.path.dropFirst()
            // The closed store's connections go away on their own time; a template needs none.
            var attempt = 0
            while true {
                do {
                    try cluster.psql(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '\(source)'")
                    try cluster.psql("CREATE DATABASE \(name) TEMPLATE \(source)")
                    break
                } catch  where attempt < 50 {
                    attempt += 1
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
            let target = cluster.databaseURL(name)
            copy = EngineStore(
                engine: engine, directory: nil, url: target, blockTargetBytes: blockTargetBytes,
                store: try await Self.openPostgres(target, blockTargetBytes: blockTargetBytes))
        }
        try await reopen()
        return copy
    }

    deinit {
        store.close()
        if let directory { try? FileManager.default.removeItem(atPath: directory) }
    }
}

func created(
    _ user: String, _ notification: String, id: String? = nil, title: String = "Hello", kind: String? = nil
) -> NewEvent {
    let kindField = kind.map { #","kind":"\#($0)""# } ?? ""
    return NewEvent(
        type: .created, userID: user, id: id,
        data: #"{"notification_id":"\#(notification)","title":"\#(title)"\#(kindField)}"#)
}

func read(_ user: String, _ notification: String, id: String? = nil) -> NewEvent {
    NewEvent(type: .read, userID: user, id: id, data: #"{"notification_id":"\#(notification)"}"#)
}

func readAll(_ user: String, upTo: Int64? = nil, id: String? = nil) -> NewEvent {
    bulk(.readAll, user, upTo: upTo, id: id)
}

/// A bulk event (read_all, seen_all, archived_all) with its optional fields.
func bulk(
    _ type: EventType, _ user: String, upTo: Int64? = nil, kind: String? = nil, onlyRead: Bool? = nil, id: String? = nil
) -> NewEvent {
    var fields: [String] = []
    if let upTo { fields.append(#""up_to_seq":\#(upTo)"#) }
    if let kind { fields.append(#""kind":"\#(kind)""#) }
    if let onlyRead { fields.append(#""only_read":\#(onlyRead)"#) }
    return NewEvent(type: type, userID: user, id: id, data: "{" + fields.joined(separator: ",") + "}")
}

/// An event that changes one notification's state (read, unread, seen, archived, ...).
func change(
    _ type: EventType, _ user: String, _ notification: String, until: String? = nil, id: String? = nil
)
    -> NewEvent
{
    let untilField = until.map { #","until":"\#($0)""# } ?? ""
    return NewEvent(type: type, userID: user, id: id, data: #"{"notification_id":"\#(notification)"\#(untilField)}"#)
}

extension StoredEvent {
    var dataText: String { String(decoding: data, as: UTF8.self) }
}
