import Dispatch
import Synchronization
import TidingsStore

/// Read connections for one kind of read, bounded and fair.
///
/// A store has two lanes: short reads (a user's unread state, pages, stream starts and
/// replays, the log watcher, stats), which take a few milliseconds each, and long scans
/// (exports, log and projection verification, rebuild), which may take seconds. Each lane has
/// its own connections, so no number of scans can keep a short read waiting for a connection.
///
/// Waiting never parks a thread: a read that finds every connection lent out waits as a
/// continuation in a FIFO queue (at most `waitingMax` of them), and the connection a finished
/// read gives back goes straight to the oldest waiter. Only the read itself runs on a dispatch
/// thread (SQLite blocks, so never on Swift's cooperative pool or an event loop), and at most
/// `connectionsMax` run at once. Connections open lazily, the first time a lane needs them.
final class ReadLane: Sendable {
    struct Configuration: Sendable {
        /// For thread names and errors: "short reads", "scans".
        var name: String
        /// For metrics: "short", "scan".
        var label: String
        /// Connections of the lane, and so reads running at once.
        var connectionsMax: Int
        /// Reads waiting for a connection; one more is refused with `unavailable`.
        var waitingMax: Int
        /// SQLite page cache of each connection.
        var pageCacheBytes: Int
    }

    /// What a waiting read is handed: a connection, or the right to open one.
    private enum Lease: Sendable {
        case connection(Database)
        case open
    }

    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<Lease, any Error>
    }

    private struct State {
        var idle: [Database] = []
        /// Connections open or being opened, idle or lent out.
        var opened = 0
        var waiters: [Waiter] = []
        var closed = false
    }

    let configuration: Configuration
    private let context: StoreContext
    private let state = Mutex(State())
    private let waits = Mutex(ReadWaitHistogram())
    private let nextWaiterID = Atomic<UInt64>(0)
    private let queue: DispatchQueue
    /// Entered for every lent connection; `close` waits on it.
    private let lent = DispatchGroup()

    init(context: StoreContext, configuration: Configuration) {
        precondition(configuration.connectionsMax >= 1 && configuration.waitingMax >= 0)
        self.context = context
        self.configuration = configuration
        queue = DispatchQueue(label: "tidings.reads.\(configuration.name)", attributes: .concurrent)
    }

    /// Runs `body` with a connection of this lane on a dispatch thread, waiting (without a
    /// thread) for a connection first when all are lent out.
    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        let asked = ContinuousClock.now
        let lease = try await acquire()
        return try await withCheckedThrowingContinuation { continuation in
            queue.async {
                // The wait a caller sees: for a connection, then for a thread to run on.
                let waited = ContinuousClock.now - asked
                self.waits.withLock { $0.record(waited) }
                var database: Database?
                let result = Result<T, any Error> {
                    switch lease {
                    case .connection(let lent): database = lent
                    case .open: database = try self.openConnection()
                    }
                    return try body(database!)
                }
                // Give the connection back before resuming, so the next waiter starts at once.
                self.release(database)
                continuation.resume(with: result)
            }
        }
    }

    /// Reads waiting for a connection now (for tests and metrics).
    var waitingCount: Int { state.withLock { $0.waiters.count } }

    var statistics: ReadLaneStatistics {
        let (opened, idle, waiting) = state.withLock { ($0.opened, $0.idle.count, $0.waiters.count) }
        return ReadLaneStatistics(
            lane: configuration.label, connectionsMax: configuration.connectionsMax, running: opened - idle,
            waiting: waiting, waits: waits.withLock { $0 })
    }

    // MARK: Lending

    private func acquire() async throws -> Lease {
        let id = nextWaiterID.add(1, ordering: .relaxed).newValue
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Lease, any Error>) in
                enum Outcome {
                    case lease(Lease)
                    case refused(any Error)
                    case queued
                }
                let outcome = state.withLock { state -> Outcome in
                    if state.closed { return .refused(StoreError(.unavailable, "the store is closed")) }
                    if let database = state.idle.popLast() {
                        lent.enter()
                        return .lease(.connection(database))
                    }
                    if state.opened < configuration.connectionsMax {
                        state.opened += 1
                        lent.enter()
                        return .lease(.open)
                    }
                    if Task.isCancelled { return .refused(CancellationError()) }
                    guard state.waiters.count < configuration.waitingMax else {
                        return .refused(
                            StoreError(
                                .unavailable,
                                "\(configuration.waitingMax) \(configuration.name) are already waiting for the store; try again"
                            ))
                    }
                    state.waiters.append(Waiter(id: id, continuation: continuation))
                    return .queued
                }
                switch outcome {
                case .lease(let lease): continuation.resume(returning: lease)
                case .refused(let error): continuation.resume(throwing: error)
                case .queued: break
                }
            }
        } onCancel: {
            let waiter = state.withLock { state -> Waiter? in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index)
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Hands a connection back: to the oldest waiter, else to the idle ones. Nil when opening
    /// one failed: the slot goes to the next waiter, who tries again.
    private func release(_ database: Database?) {
        enum Next {
            case handOver(Waiter, Lease)
            case close(Database)
            case done
        }
        let next = state.withLock { state -> Next in
            if state.closed {
                state.opened -= 1
                return database.map { .close($0) } ?? .done
            }
            if !state.waiters.isEmpty {
                return .handOver(state.waiters.removeFirst(), database.map { .connection($0) } ?? .open)
            }
            if let database {
                state.idle.append(database)
            } else {
                state.opened -= 1
            }
            return .done
        }
        switch next {
        case .handOver(let waiter, let lease):
            // The lent count moves to the waiter with the connection.
            waiter.continuation.resume(returning: lease)
        case .close(let database):
            database.close()
            lent.leave()
        case .done:
            lent.leave()
        }
    }

    private func openConnection() throws -> Database {
        let database = try Database(
            path: context.databasePath, mode: .readOnly,
            busyTimeoutMilliseconds: context.options.busyTimeoutMilliseconds
        )
        do {
            try context.configure(database, pageCacheBytes: configuration.pageCacheBytes)
        } catch {
            database.close()
            throw error
        }
        return database
    }

    /// Refuses new reads, fails the waiting ones, closes the idle connections, and waits for
    /// the lent ones to come back (they are closed as they do). Blocks the calling thread:
    /// for closing the store.
    func close() {
        let (waiters, idle) = state.withLock { state -> ([Waiter], [Database]) in
            state.closed = true
            defer {
                state.waiters = []
                state.opened -= state.idle.count
                state.idle = []
            }
            return (state.waiters, state.idle)
        }
        for waiter in waiters { waiter.continuation.resume(throwing: StoreError(.unavailable, "the store is closed")) }
        for database in idle { database.close() }
        lent.wait()
    }
}
