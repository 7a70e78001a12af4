import Dispatch
import Synchronization

/// Read connections for concurrent readers. Each read borrows one connection on a dispatch
/// thread (SQLite blocks, so never on Swift's cooperative pool), at most `readersMax` at once.
final class ReaderPool: Sendable {
    private let context: StoreContext
    private let idle = Mutex<[Database]>([])
    private let slots: DispatchSemaphore
    private let queue = DispatchQueue(label: "tidings.readers", attributes: .concurrent)
    private let closed = Mutex(false)

    init(context: StoreContext) {
        self.context = context
        slots = DispatchSemaphore(value: context.options.readersMax)
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try self.readNow(body) })
            }
        }
    }

    /// Borrows a connection on the calling thread (which must not be an event loop or the
    /// cooperative pool).
    func readNow<T>(_ body: (Database) throws -> T) throws -> T {
        guard !closed.withLock({ $0 }) else { throw StoreError(.unavailable, "the store is closed") }
        slots.wait()
        defer { slots.signal() }
        let database = try idle.withLock { $0.popLast() } ?? openConnection()
        defer { idle.withLock { $0.append(database) } }
        return try body(database)
    }

    private func openConnection() throws -> Database {
        let database = try Database(
            path: context.databasePath, mode: .readOnly,
            busyTimeoutMilliseconds: context.options.busyTimeoutMilliseconds)
        try context.configure(database, writer: false)
        return database
    }

    func close() {
        closed.withLock { $0 = true }
        for _ in 0..<context.options.readersMax { slots.wait() }
        let connections = idle.withLock { connections -> [Database] in
            defer { connections = [] }
            return connections
        }
        for connection in connections { connection.close() }
        for _ in 0..<context.options.readersMax { slots.signal() }
    }
}
