import Foundation
import Synchronization
import Testing

@testable import TidingsSQLite
@testable import TidingsStore

/// A store in a fresh temporary directory, removed when the test ends.
final class TemporaryStore: @unchecked Sendable {
    let directory: String
    private(set) var store: SQLiteStore!

    init(options: StoreOptions = StoreOptions()) async throws {
        directory = NSTemporaryDirectory() + "tidings-test-" + UUID().uuidString
        store = try await SQLiteStore.open(directory: directory, options: options)
    }

    /// Closes and opens the store again, as a restart would.
    func reopen(options: StoreOptions = StoreOptions()) async throws {
        store.close()
        store = try await SQLiteStore.open(directory: directory, options: options)
    }

    var databasePath: String { directory + "/" + SQLiteStore.databaseFileName }

    deinit {
        store?.close()
        try? FileManager.default.removeItem(atPath: directory)
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

/// Runs `body` expecting a `StoreError` with `code`; returns it.
@discardableResult
func expectStoreError(
    _ code: StoreError.Code, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void
) async -> StoreError? {
    do {
        try await body()
        Issue.record("expected \(code), got success", sourceLocation: sourceLocation)
        return nil
    } catch let error as StoreError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected \(code), got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// A settable clock for tests.
final class ClockBox: Sendable {
    private let value: Mutex<Int64>
    init(_ value: Int64) { self.value = Mutex(value) }
    func now() -> Int64 { value.withLock { $0 } }
    func set(_ newValue: Int64) { value.withLock { $0 = newValue } }
}
