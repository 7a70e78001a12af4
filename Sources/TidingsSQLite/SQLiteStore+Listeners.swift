public import TidingsStore

extension SQLiteStore {
    /// Calls `listener` with the events of every transaction this process commits, in seq order,
    /// each with its user's unread count after it. Runs on the writer's queue: hand the events on
    /// and return. Events other processes append do not pass here.
    public func onCommit(_ listener: @escaping @Sendable ([StoredEvent], CursorAnchor) -> Void) {
        context.commitFeed.add(listener)
    }
}

extension SQLiteStore {
    /// Calls `listener` for every failure of the store's own I/O and once when a failing
    /// operation succeeds again. Runs on the thread that saw it (often the writer's queue):
    /// log or count and return.
    public func onFault(_ listener: @escaping @Sendable (StoreFault) -> Void) {
        context.faults.add(listener)
    }
}
