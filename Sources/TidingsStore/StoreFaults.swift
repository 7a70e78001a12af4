import Synchronization

/// A failure of I/O the store does on its own, which no caller is waiting for: the projection
/// checkpoint the writer runs every few thousand events, the checkpoints at close. An append or
/// a read that fails throws to its caller; these would otherwise fail silently, so the store
/// reports them to whoever listens (the server logs the first failure of a run with its cause,
/// and counts every one in `/metrics`).
public struct StoreFault: Sendable, CustomStringConvertible {
    /// What failed. A struct rather than an enum so operations can be added.
    public struct Operation: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public var description: String { rawValue }

        /// Writing the projection overlay into its base tables.
        public static let projectionCheckpoint = Operation(rawValue: "projection_checkpoint")
        /// Copying the WAL into the database and truncating it when the store closes.
        public static let walCheckpoint = Operation(rawValue: "wal_checkpoint")
        package init(rawValue: String) {
            self.rawValue = rawValue
        }
    }

    public let operation: Operation
    /// The cause, in words (the SQLite message and code); empty for a recovery.
    public let message: String
    /// Failures of this operation in a row, this one included; 0 when this reports that it
    /// succeeded again after failing.
    public let consecutiveFailures: Int

    public var isRecovery: Bool { consecutiveFailures == 0 }

    public var description: String {
        isRecovery
            ? "\(operation) succeeded again" : "\(operation) failed (\(consecutiveFailures) in a row): \(message)"
    }
    package init(operation: Operation, message: String, consecutiveFailures: Int) {
        self.operation = operation
        self.message = message
        self.consecutiveFailures = consecutiveFailures
    }
}

/// Keeps the run of failures of each operation and tells the listeners.
package final class FaultReporter: Sendable {
    package init() {}

    private struct State {
        package var listeners: [@Sendable (StoreFault) -> Void] = []
        package var consecutive: [StoreFault.Operation: Int] = [:]
    }

    private let state = Mutex(State())

    package func add(_ listener: @escaping @Sendable (StoreFault) -> Void) {
        state.withLock { $0.listeners.append(listener) }
    }

    package func removeAll() {
        state.withLock { $0.listeners.removeAll() }
    }

    package func failed(_ operation: StoreFault.Operation, _ error: any Error) {
        let (listeners, count) = state.withLock { state in
            state.consecutive[operation, default: 0] += 1
            return (state.listeners, state.consecutive[operation]!)
        }
        let fault = StoreFault(operation: operation, message: "\(error)", consecutiveFailures: count)
        for listener in listeners { listener(fault) }
    }

    package func succeeded(_ operation: StoreFault.Operation) {
        let listeners = state.withLock { state -> [@Sendable (StoreFault) -> Void] in
            guard state.consecutive.removeValue(forKey: operation) != nil else { return [] }
            return state.listeners
        }
        let recovery = StoreFault(operation: operation, message: "", consecutiveFailures: 0)
        for listener in listeners { listener(recovery) }
    }

    /// Failures in a row of `operation` now.
    package func consecutiveFailures(_ operation: StoreFault.Operation) -> Int {
        state.withLock { $0.consecutive[operation] ?? 0 }
    }
}
